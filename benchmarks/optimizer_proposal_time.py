"""Seconds per proposal of each algorithm with 60 observations already told.

    .venv/bin/python benchmarks/optimizer_proposal_time.py --problem tinyml --observations 60
    .venv/bin/python benchmarks/optimizer_proposal_time.py \
        --algorithms ars-mobo,ars-mobo+reward=log-nehvi+iterations=5

An algorithm is a registry name, optionally with settings as in optimizer_protocol.py.

The observations come from a Sobol design, so every algorithm times the same model fit and
acquisition work. Torch runs on one thread, as in the benchmark. CPU seconds are given beside
wall seconds because a shared machine inflates the wall time, not the work.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from optimizer_protocol import parse_method
from rich.console import Console
from rich.table import Table

from optimizer.algorithms import ALGORITHMS, make_optimizer
from optimizer.problems import PROBLEMS, make_problem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="tinyml", choices=sorted(PROBLEMS))
    parser.add_argument("--observations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    problem = make_problem(args.problem)
    design = make_optimizer("sobol", problem.spec, seed=123)
    history = [problem.evaluate(p.x) for p in design.ask(args.observations)]

    table = Table(title=f"seconds per proposal, {args.problem}, {args.observations} observations")
    table.add_column("algorithm", overflow="fold")  # settings make long names: fold, not cut
    for column in ("wall min s", "wall mean s", "wall max s", "CPU mean s"):
        table.add_column(column, justify="right")
    for method in args.algorithms.split(","):
        name, settings = parse_method(method)
        times, cpu = [], []
        for repeat in range(args.repeats):
            opt = make_optimizer(name, problem.spec, seed=repeat, **settings)
            opt.tell(history)
            start, start_cpu = time.perf_counter(), time.process_time()
            opt.ask(1)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        table.add_row(
            method,
            f"{min(times):.2f}",
            f"{sum(times) / len(times):.2f}",
            f"{max(times):.2f}",
            f"{sum(cpu) / len(cpu):.2f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
