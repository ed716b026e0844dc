"""Search quality on the real loop: ARS-MOBOpt against Sobol, hypervolume after N evaluations.

    .venv/bin/python benchmarks/search_quality.py                  # 30 evaluations, seeds 0 1
    .venv/bin/python benchmarks/search_quality.py --budget 12 --seeds 0
    .venv/bin/python benchmarks/search_quality.py --no-run         # table of the runs so far

Each (algorithm, seed) is one real `hil search` of `examples/search-digits-demo.toml` (the
README demo's config: digits ResNets, trained, pruned, quantized and measured on qemu-m4) with
`--budget N`, in
RUNS/<algorithm>-seed<S>/ (default runs/search-quality/). A run that exists is resumed, or
reused when finished, so an interrupted benchmark continues where it was. The table gives each
run's final normalised hypervolume with ONE reference point for all runs (that of the config:
accuracy 0, flash 128 KiB, RAM 64 KiB, latency 20 ms), its feasible and failed counts, the size
of its front and its wall time; then the mean per algorithm. Raw results go to
benchmarks/results/search_quality.json (every trial: hyperparameters, objectives, feasible,
failure, plus each run's hypervolume history) and the overlay report of all runs to
RUNS/report.html (`hil report` on every run) and benchmarks/results/search_quality.html
(with its PNGs in search_quality-png/).

Expensive: about 30 trainings and QEMU profiles per run; on 2 busy cores an hour or more for
the four runs. Run it in the background (`nohup ... > log &`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "search-digits-demo.toml"


def run_one(config: Path, run: Path, algorithm: str, seed: int, budget: int) -> float:
    """Start (or resume) one search; returns the wall seconds this call took."""
    hil = [sys.executable, "-m", "hil.cli", "search"]
    if (run / "search.db").is_file():
        cmd = [*hil, "--resume", str(run), "--budget", str(budget), "--plain"]
    else:
        cmd = [*hil, str(config), "--out", str(run), "--algorithm", algorithm, "--seed",
               str(seed), "--budget", str(budget), "--plain"]  # fmt: skip
    print(f"$ {' '.join(cmd[2:])}", flush=True)
    start = time.monotonic()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--algorithms", nargs="+", default=["ars-mobo", "sobol"])
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "search-quality")
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="only summarise the runs that exist (e.g. while they are running)",
    )
    parser.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results" / "search_quality.json"
    )
    args = parser.parse_args()

    from optimizer.search.report import write_report
    from optimizer.search.store import open_run

    runs: list[tuple[str, int, Path]] = [  # seed by seed, so a partial run compares already
        (a, s, args.runs / f"{a}-seed{s}") for s in args.seeds for a in args.algorithms
    ]
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    if args.no_run:
        runs = [r for r in runs if (r[2] / "search.db").is_file()]
        if not runs:
            sys.exit(f"no run under {args.runs} yet")
    else:
        for algorithm, seed, run in runs:
            run_one(args.config, run, algorithm, seed, args.budget)

    html = args.runs / "report.html"
    data = write_report([r for _, _, r in runs], html_path=html)
    wall: dict[str, float] = {}
    for _, _, run in runs:
        store = open_run(run)
        trials = store.trials()
        store.close()
        times = [t for t in trials if t.started_at is not None and t.finished_at is not None]
        first = min((t.proposed_at for t in trials), default=0.0)
        last = max((t.finished_at or 0.0 for t in times), default=first)
        wall[str(run)] = last - first

    evaluated = {r["run"]: len(r["hypervolume_history"]) for r in data["runs"]}
    common = min(evaluated.values())  # runs cut short still compare at the same count
    hv_at = {r["run"]: (r["hypervolume_history"][common - 1][1] if common else 0.0)
             for r in data["runs"]}  # fmt: skip
    ref = ", ".join(f"{k} {v:g}" for k, v in data["reference_point"].items())
    table = Table(title=f"hil search on {args.config.name}: {args.budget} evaluations, "
                  f"normalised hypervolume (reference point: {ref})")  # fmt: skip
    columns = ("algorithm", "seed", "HV", "evaluated", f"HV@{common}", "feasible", "failed",
               "front", "wall min")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    per_algo: dict[str, list[float]] = {}
    per_algo_at: dict[str, list[float]] = {}
    for r in data["runs"]:
        feasible = sum(1 for t in r["trials"] if t["status"] == "done" and t["feasible"])
        table.add_row(
            r["algorithm"], str(r["seed"]), f"{r['hypervolume']:.4f}",
            f"{evaluated[r['run']]}/{r['budget']}", f"{hv_at[r['run']]:.4f}", str(feasible),
            str(r["counts"].get("failed", 0)),
            str(len(r["front"])), f"{wall[r['run']] / 60:.1f}",
        )  # fmt: skip
        per_algo.setdefault(r["algorithm"], []).append(r["hypervolume"])
        per_algo_at.setdefault(r["algorithm"], []).append(hv_at[r["run"]])
    for algorithm, hvs in per_algo.items():
        mean = sum(hvs) / len(hvs)
        mean_at = sum(per_algo_at[algorithm]) / len(hvs)
        table.add_row(f"[bold]{algorithm} mean[/]", "", f"[bold]{mean:.4f}[/]", "",
                      f"[bold]{mean_at:.4f}[/]", *[""] * 4)  # fmt: skip
    Console(width=140).print(table)

    summary: dict[str, Any] = {
        "benchmark": "search_quality",
        "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO)
                      else args.config),
        "config_text": args.config.read_text(),
        "budget": args.budget,
        "seeds": args.seeds,
        "algorithms": args.algorithms,
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "machine": platform.machine(),
                    "cpus": os.cpu_count()},
        "reference_point": data["reference_point"],
        "objectives": data["objectives"],
        "mean_hypervolume": {a: sum(h) / len(h) for a, h in per_algo.items()},
        "common_evaluations": common,
        "mean_hypervolume_at_common_evaluations": {
            a: sum(h) / len(h) for a, h in per_algo_at.items()
        },
        "runs": [
            {**{k: r[k] for k in ("algorithm", "seed", "budget", "counts", "failures",
                                  "hypervolume", "hypervolume_history", "front")},
             "run": str(Path(r["run"]).relative_to(REPO) if Path(r["run"]).is_relative_to(REPO)
                        else r["run"]),
             "wall_seconds": round(wall[r["run"]], 1),
             "evaluated": evaluated[r["run"]],
             "hypervolume_at_common_evaluations": hv_at[r["run"]],
             "trials": [{k: t[k] for k in ("id", "status", "failure_kind", "reason", "params",
                                           "objectives", "feasible", "on_front", "val_accuracy",
                                           "test_accuracy", "timings")}
                        for t in r["trials"]]}
            for r in data["runs"]
        ],
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1) + "\n")
    copy = args.json.with_suffix(".html")  # links to models resolve where runs/ exists
    write_report([r for _, _, r in runs], html_path=copy)
    print(f"raw results: {args.json}\noverlay report: {html} (also {copy})")


if __name__ == "__main__":
    main()
