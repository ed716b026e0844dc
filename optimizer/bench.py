"""Compare search algorithms on one benchmark problem: hypervolume over evaluations.

    python -m optimizer.bench --problem tinyml \\
        --algorithms ars-mobo,qlognehvi,qnparego,nsga2,sobol \\
        --budget 60 --seeds 5 --json out.json --plot out.png

Prints, per algorithm, the mean and standard deviation over seeds of the normalised
hypervolume (see `optimizer.hypervolume`) after 25 and 50 evaluations and at the full budget,
and the wall seconds per proposal. The JSON holds ``results[algorithm]["hv"]``: one list per
seed of the hypervolume after each evaluation. It is rewritten after every finished run, so a
long benchmark that is stopped keeps what it has done.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hil.errors import HilError
from optimizer.algorithms import ALGORITHMS, make_optimizer
from optimizer.core import OptimizerError
from optimizer.problems import PROBLEMS, Problem, make_problem

#: Evaluation counts the table reports (plus the full budget).
CHECKPOINTS = (25, 50)


def run_search(
    problem: Problem,
    algorithm: str,
    seed: int,
    budget: int,
    q: int = 1,
    on_evaluation: Any = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One search: hypervolume after each evaluation, and wall seconds per proposed point.
    `settings` overrides the algorithm's defaults (for ablations)."""
    optimizer = make_optimizer(algorithm, problem.spec, seed=seed, **(settings or {}))
    ask_seconds = 0.0
    while len(optimizer.observations) < budget:
        start = time.perf_counter()
        proposals = optimizer.ask(min(q, budget - len(optimizer.observations)))
        ask_seconds += time.perf_counter() - start
        optimizer.tell([problem.evaluate(p.x) for p in proposals])
        if on_evaluation is not None:
            on_evaluation(len(proposals))
    return {
        "hv": problem.indicator.history(optimizer.observations),
        "seconds_per_proposal": ask_seconds / budget,
        "feasible": sum(o.feasible for o in optimizer.observations),
    }


def summarise(hv: Sequence[Sequence[float]], at: int) -> tuple[float, float]:
    """Mean and standard deviation over seeds of the hypervolume after `at` evaluations."""
    values = np.array([run[at - 1] for run in hv])
    return float(values.mean()), float(values.std())


def table(result: dict[str, Any]) -> Table:
    budget = result["budget"]
    points = [n for n in CHECKPOINTS if n < budget] + [budget]
    out = Table(
        title=f"{result['problem']}: normalised hypervolume, mean ± std over "
        f"{result['seeds']} seeds (q={result['q']})"
    )
    out.add_column("algorithm")
    for n in points:
        out.add_column(f"HV@{n}", justify="right")
    out.add_column("s / proposal", justify="right")
    for name, res in result["results"].items():
        cells = [f"{m:.4f} ± {s:.4f}" for m, s in (summarise(res["hv"], n) for n in points)]
        seconds = float(np.mean(res["seconds_per_proposal"]))
        out.add_row(name, *cells, f"{seconds:.2f}")
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, res in result["results"].items():
        hv = np.array(res["hv"])
        x = np.arange(1, hv.shape[1] + 1)
        mean, std = hv.mean(axis=0), hv.std(axis=0)
        ax.plot(x, mean, label=name)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("normalised hypervolume")
    ax.set_title(
        f"{result['problem']} ({len(next(iter(result['results'].values()))['hv'])} "
        "seeds, mean ± std)"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m optimizer.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--problem", required=True, help=f"one of {', '.join(PROBLEMS)}")
    parser.add_argument(
        "--algorithms", default=",".join(ALGORITHMS), help="comma-separated algorithm names"
    )
    parser.add_argument("--budget", type=int, default=60, help="evaluations per search")
    parser.add_argument("--seeds", type=int, default=5, help="searches per algorithm")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--q", type=int, default=1, help="points per ask (parallel evaluators)")
    parser.add_argument("--json", type=Path, help="write all hypervolume histories here")
    parser.add_argument("--plot", type=Path, help="write hypervolume over evaluations (PNG)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    problem = make_problem(args.problem)
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown or not algorithms:
        raise OptimizerError(f"unknown algorithm(s) {unknown}; choose from {', '.join(ALGORITHMS)}")
    if args.budget < 2 or args.seeds < 1 or args.q < 1:
        raise OptimizerError("--budget must be >= 2, --seeds and --q >= 1")
    result: dict[str, Any] = {
        "problem": problem.name,
        "description": problem.description,
        "normalisation": {
            "ideal": problem.indicator.ideal.tolist(),
            "ref_point": problem.indicator.ref_point.tolist(),
        },
        "budget": args.budget,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "q": args.q,
        "results": {},
    }
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        for name in algorithms:
            runs = []
            for seed in seeds:
                task = progress.add_task(f"{name} seed {seed}", total=args.budget)
                runs.append(
                    run_search(
                        problem,
                        name,
                        seed,
                        args.budget,
                        args.q,
                        on_evaluation=lambda n, task=task: progress.advance(task, n),
                    )
                )
                progress.remove_task(task)
                result["results"][name] = {key: [r[key] for r in runs] for key in runs[0]}
                if args.json:
                    tmp = args.json.with_name(args.json.name + ".tmp")
                    tmp.write_text(json.dumps(result))
                    tmp.replace(args.json)  # readers never see half a file
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    torch.set_num_threads(1)
    # Numerical notes from botorch/gpytorch (jitter added, L-BFGS stopped early) are expected
    # on small noise-free data sets and would drown the table.
    warnings.filterwarnings("ignore", module=r"(botorch|gpytorch|linear_operator)(\..*)?")
    warnings.filterwarnings("ignore", message=r".*(jitter|not p\.d\.|Optimization failed).*")
    try:
        result = run(args, console)
    except HilError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(table(result))
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
