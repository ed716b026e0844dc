"""The markdown tables of docs/optimizer.md, re-derived from the committed raw JSON.

    .venv/bin/python benchmarks/optimizer_tables.py [--results benchmarks/results/optimizer]

Reads what `benchmarks/optimizer_protocol.py` wrote and prints:

- the inner-optimiser ablation: the reward of each variant's chosen state on one fixed reward
  per (problem, seed), paired differences against ARS with t-based 95 % intervals;
- the search comparison: normalised hypervolume after `--at` evaluations, mean and standard
  deviation (ddof=1) over seeds, and the paired difference against `--against` over the seeds
  both methods have (every seed shares its initial design across the GP methods).

Only seeds present for both sides of a difference enter it; the tables say how many.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

DEFAULT = Path(__file__).parent / "results" / "optimizer"


def paired(diffs: list[float]) -> str:
    """mean [95 % t interval] of paired differences (ddof=1); n < 2 has no interval."""
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return "-"
    if len(d) < 2:
        return f"{d.mean():+.4f} (n=1)"
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return f"{d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}]"


def mean_sd(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v.mean():.4f}"


def load(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("seed*.json"))]


def inner_tables(results: Path) -> str:
    runs = load(results / "inner")
    if not runs:
        return "(no inner-ablation results)\n"
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_problem[run["problem"]].append(run)
    lines = []
    for problem, items in by_problem.items():
        variants = list(items[0]["variants"])
        seeds = [r["seed"] for r in items]
        lines += [
            f"**{problem}** ({len(items)} seeds: {', '.join(map(str, seeds))}; "
            f"{items[0]['observations']} observations)",
            "",
            "| inner optimiser | best reward (mean ± sd) | minus ARS: mean [95 % CI] "
            "| beats ARS | CPU s |",
            "|---|---|---|---|---|",
        ]
        ars = [r["variants"]["ars"]["best_reward"] for r in items]
        for v in variants:
            vals = [r["variants"][v]["best_reward"] for r in items]
            diffs = [a - b for a, b in zip(vals, ars, strict=True)]
            wins = sum(d > 1e-9 for d in diffs)
            cpu = np.mean([r["variants"][v]["cpu_seconds"] for r in items])
            lines.append(
                f"| {v} | {mean_sd(vals)} | {paired(diffs) if v != 'ars' else '-'} "
                f"| {f'{wins}/{len(diffs)}' if v != 'ars' else '-'} | {cpu:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def loop_tables(results: Path, at: int, against: str) -> str:
    runs = load(results / "loop")
    if not runs:
        return "(no search results)\n"
    table: dict[str, dict[str, dict[int, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        table[run["problem"]][run["method"]][run["seed"]] = run
    lines = []
    for problem, methods in table.items():
        lines += [
            f"**{problem}**, HV after {at} evaluations",
            "",
            f"| method | seeds | HV@{at} mean ± sd | minus {against}: mean [95 % CI] (paired n) "
            f"| ahead of {against} | s / proposed point | CPU s / search |",
            "|---|---|---|---|---|---|---|",
        ]
        base = methods.get(against, {})
        for method, seeds in methods.items():
            hv = {s: r["hv"][at - 1] for s, r in seeds.items()}
            common = sorted(set(hv) & set(base))
            diffs = [hv[s] - base[s]["hv"][at - 1] for s in common]
            diff = paired(diffs) + f" ({len(common)})" if method != against else "-"
            ahead = f"{sum(d > 0 for d in diffs)}/{len(diffs)}" if method != against else "-"
            secs = np.mean([r["seconds_per_proposal"] for r in seeds.values()])
            cpu = np.mean([r["cpu_seconds"] for r in seeds.values()])
            lines.append(
                f"| {method} | {len(hv)} | {mean_sd(list(hv.values()))} | {diff} | {ahead} "
                f"| {secs:.2f} | {cpu:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT)
    parser.add_argument("--at", type=int, default=50)
    parser.add_argument("--against", default="ars-mobo")
    args = parser.parse_args()
    print("### Inner-optimiser ablation\n")
    print(inner_tables(args.results))
    print("### Searches\n")
    print(loop_tables(args.results, args.at, args.against))


if __name__ == "__main__":
    main()
