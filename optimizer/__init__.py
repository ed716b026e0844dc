"""The search: search spaces, ARS-MOBOpt and baselines, and the candidate factory."""
