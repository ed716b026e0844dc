"""The pieces of ARS-MOBOpt: a batched MLP policy, the acquisition reward, the ARS trainer."""
