"""Ablation of ARS-MOBOpt's settings: hypervolume at a small budget for one change at a time.

    .venv/bin/python benchmarks/optimizer_ars_ablation.py --problem tinyml --budget 30 --seeds 2

Each variant changes the defaults in `ArsMoboSettings` as named; the table gives the mean and
standard deviation over seeds of the normalised hypervolume at the budget and the wall seconds
per proposal. docs/optimizer.md records the run that chose the defaults. For issue 13's paired,
resumable protocol (raw JSON per run) use benchmarks/optimizer_protocol.py instead.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from optimizer.bench import run_search
from optimizer.problems import PROBLEMS, make_problem

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "iterations=5": {"iterations": 5},
    "iterations=40": {"iterations": 40},
    "horizon=4": {"horizon": 4},
    "horizon=20": {"horizon": 20},
    "N=16,K=8": {"directions": 16, "top_directions": 8},
    "K=N=8": {"top_directions": 8},
    "L=1": {"policies": 1},
    "L=8": {"policies": 8},
    "reward=ei": {"reward": "ei"},
    "alpha=0.1": {"step_size": 0.1},
    "nu=0.2": {"noise": 0.2},
    "box=off": {"reference_box": False},
    # Issue 13: the inner-optimiser swap and the paper-style variants.
    "inner=lbfgs": {"inner": "lbfgs"},
    "inner=random": {"inner": "random"},
    "policy=linear": {"policy": "linear"},
    "polish": {"polish": True},
    "weights=stratified": {"weights": "stratified"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="tinyml", choices=sorted(PROBLEMS))
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    problem = make_problem(args.problem)
    rows: dict[str, Any] = {}
    table = Table(
        title=f"ARS-MOBOpt ablation, {args.problem}, budget {args.budget}, {args.seeds} seeds"
    )
    for column in ("variant", f"HV@{args.budget}", "s / proposal"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name in args.variants.split(","):
        runs = [
            run_search(problem, "ars-mobo", seed, args.budget, settings=VARIANTS[name])
            for seed in range(args.seeds)
        ]
        final = np.array([r["hv"][-1] for r in runs])
        seconds = float(np.mean([r["seconds_per_proposal"] for r in runs]))
        rows[name] = {"hv": [r["hv"] for r in runs], "seconds_per_proposal": seconds}
        table.add_row(name, f"{final.mean():.4f} ± {final.std():.4f}", f"{seconds:.2f}")
        if args.json:
            args.json.write_text(json.dumps(rows))
    Console().print(table)


if __name__ == "__main__":
    main()
