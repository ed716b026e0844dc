"""Issue 13's protocol: raw JSON per (method, problem, seed), resumable, for paired tables.

Two parts, each writing one JSON file per finished unit under `--out` and skipping files that
exist (a stopped run resumes where it stopped; partial results survive):

``loop``  whole searches: ``loop/<method>/<problem>/seed<NN>.json`` with the normalised
          hypervolume after every evaluation. A method is a registry name, optionally with
          ARS-MOBOpt settings: ``ars-mobo+inner=lbfgs``, ``ars-mobo+policy=linear+polish=true``.
``inner`` the inner-optimiser ablation: per (problem, seed), the seed's Latin-hypercube design
          plus seeded Sobol points up to `--observations`, ONE fitted GP, ONE reward (weights,
          reference box) and ONE set of start states; every variant maximises that same reward
          and the file ``inner/<problem>/seed<NN>.json`` records the best reward each reached
          and its CPU seconds.

    nice -n 10 .venv/bin/python benchmarks/optimizer_protocol.py inner \\
        --problems tinyml,dtlz2,branin-currin --seeds 0-9
    nice -n 10 .venv/bin/python benchmarks/optimizer_protocol.py loop \\
        --problems tinyml,dtlz2,branin-currin --seeds 0-9 --budget 50 \\
        --methods ars-mobo,ars-mobo+polish=true,ars-mobo+inner=lbfgs+polish=true,\
ars-mobo+inner=random+polish=true,qlognehvi,qnparego,nsga2,sobol

(the names of the committed files: the inner swaps ran while the polish was on by default,
where it has no effect; `ars-mobo+reward=log-ei+iterations=20+mc_samples=64+polish=true` is
the Chebyshev-reward default of that time.)

`benchmarks/optimizer_tables.py` turns the files into the tables of docs/optimizer.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from botorch.utils.sampling import sample_simplex
from scipy.stats import qmc

from optimizer.algorithms import make_optimizer
from optimizer.algorithms.acquisition import reference_point
from optimizer.algorithms.ars_mobo import ArsMobo
from optimizer.ars.reward import chebyshev_ei_reward
from optimizer.bench import run_search
from optimizer.models import DTYPE, default_initial_points, fit_surrogate
from optimizer.problems import make_problem

DEFAULT_OUT = Path(__file__).parent / "results" / "optimizer"

#: The inner ablation's base: the Chebyshev log-EI reward it builds and the ARS budget it was
#: run with (12 840 reward evaluations), pinned so that a re-run measures the same thing
#: whatever ARS-MOBOpt's defaults are.
INNER_BASE: dict[str, Any] = {"reward": "log-ei", "iterations": 20, "mc_samples": 64}

#: Inner-optimiser variants: ARS-MOBOpt settings applied to the same reward.
#: `polish` is pinned off wherever it is not the point: "ars" is the bare ensemble.
INNER_VARIANTS: dict[str, dict[str, Any]] = {
    "ars": {"polish": False},
    "lbfgs": {"inner": "lbfgs", "polish": False},
    "random": {"inner": "random", "polish": False},
    "linear": {"policy": "linear", "polish": False},
    "nu=0.2": {"noise": 0.2, "polish": False},
    "linear,nu=0.2": {"policy": "linear", "noise": 0.2, "polish": False},
    "polish": {"polish": True},
    # More directions, fewer steps, and the reverse: about the same reward evaluations.
    "N=16,K=8,it=10": {"directions": 16, "top_directions": 8, "iterations": 10, "polish": False},
    "N=4,K=2,it=40": {"directions": 4, "top_directions": 2, "iterations": 40, "polish": False},
}


def parse_method(method: str) -> tuple[str, dict[str, Any]]:
    """``ars-mobo+inner=lbfgs+polish=true`` -> ("ars-mobo", {"inner": "lbfgs", "polish": True})."""
    name, *pairs = method.split("+")
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return name, settings


def parse_seeds(text: str) -> list[int]:
    """``0-9`` or ``0,3,5``."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _provenance() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def run_loop(method: str, problem_name: str, seed: int, budget: int) -> dict[str, Any]:
    name, settings = parse_method(method)
    problem = make_problem(problem_name)
    cpu = time.process_time()
    result = run_search(problem, name, seed, budget, settings=settings)
    return {
        "method": method,
        "algorithm": name,
        "settings": settings,
        "all_settings": make_optimizer(name, problem.spec, **settings).settings.to_dict(),
        "problem": problem_name,
        "seed": seed,
        "budget": budget,
        **result,
        "cpu_seconds": time.process_time() - cpu,
        **_provenance(),
    }


def run_inner(problem_name: str, seed: int, observations: int) -> dict[str, Any]:
    problem = make_problem(problem_name)
    spec = problem.spec
    n0 = default_initial_points(spec.dim)
    design = make_optimizer("sobol", spec, seed=seed)  # any optimizer gives the seed's design
    x = design.design_points(n0, n0)
    extra = qmc.Sobol(d=spec.dim, scramble=True, rng=np.random.default_rng(1000 + seed))
    x = np.vstack([x, extra.random(max(0, observations - n0))])[:observations]
    history = [problem.evaluate(row) for row in x]
    out: dict[str, Any] = {
        "problem": problem_name,
        "seed": seed,
        "observations": observations,
        "variants": {},
        **_provenance(),
    }
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        base = ArsMobo(spec, seed=seed, **INNER_BASE)
        base.tell(history)
        surrogate = fit_surrogate(*base.arrays(), base.modelling())
        ref = reference_point(surrogate, spec.ref_point)
        weights = sample_simplex(spec.num_objectives, dtype=DTYPE)[0]
        # ONE reward for every variant: the QMC base samples are fixed by the seed.
        reward = chebyshev_ei_reward(
            surrogate, weights, INNER_BASE["reward"], INNER_BASE["mc_samples"], None, ref, seed=seed
        )
    out["weights"] = weights.tolist()
    for variant, settings in INNER_VARIANTS.items():
        opt = make_optimizer("ars-mobo", spec, seed=seed, **{**INNER_BASE, **settings})
        opt.tell(history)
        cpu = time.process_time()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            states, rewards = opt._maximise(surrogate, reward)
        out["variants"][variant] = {
            "settings": settings,
            "all_settings": opt.settings.to_dict(),
            "best_reward": float(rewards.max()),
            "best_state": states[int(rewards.argmax())].tolist(),
            "cpu_seconds": time.process_time() - cpu,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("loop", "inner"))
    parser.add_argument("--problems", default="tinyml,dtlz2,branin-currin")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument(
        "--methods",
        default="ars-mobo,ars-mobo+polish=true,ars-mobo+inner=lbfgs+polish=true,"
        "ars-mobo+inner=random+polish=true",
    )
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--observations", type=int, default=30)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    seeds = parse_seeds(args.seeds)
    problems = args.problems.split(",")
    # Seed-major order: whatever finishes first is a complete paired comparison.
    for seed in seeds:
        for problem in problems:
            if args.part == "inner":
                path = args.out / "inner" / problem / f"seed{seed:02d}.json"
                if not path.exists():
                    _write(path, run_inner(problem, seed, args.observations))
                    print(f"wrote {path}", flush=True)
                continue
            for method in args.methods.split(","):
                path = args.out / "loop" / method / problem / f"seed{seed:02d}.json"
                if not path.exists():
                    _write(path, run_loop(method, problem, seed, args.budget))
                    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
