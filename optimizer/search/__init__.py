"""`hil search`: the closed loop from hyperparameters to measured Pareto front, resumable.

config     the TOML configuration (search space, objectives, constraints, boards, budget)
objectives metrics, objectives and constraints on measured values; what the optimizer is told
store      the run store (SQLite): the single source of truth, with a read API for reports
evaluate   one trial in a worker: train the candidate, profile it on each board, classify failures
executor   where trials run: the executor protocol and the local process pool
loop       ask / evaluate / tell, resume after a kill
progress   live display on a terminal, plain log lines elsewhere
results    front, hypervolume and best values derived from the trials
cli        `hil search`

Importing this package stays cheap; TensorFlow is only imported in the training children.
"""
