"""Figures derived from a run's trials: feasible Pareto front, hypervolume, best per objective.

Shared by the live display and `hil report`, so both show the same numbers. Everything works
on `store.Trial` objects and the run's objective list (`RunStore.objectives`). The
hypervolume is the normalised one (docs/search.md, "Objectives"): that of the *told*
objective vectors of the feasible trials inside the unit box, reference point all ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optimizer.hypervolume import hypervolume as _hypervolume
from optimizer.hypervolume import pareto_mask
from optimizer.search.store import Trial


def _told(trial: Trial) -> list[float] | None:
    obs = trial.observation or {}
    return obs.get("objectives")


def feasible_trials(trials: Sequence[Trial]) -> list[Trial]:
    """Finished, measured, every constraint satisfied."""
    return [t for t in trials if t.status == "done" and t.feasible and _told(t) is not None]


def front(trials: Sequence[Trial]) -> list[Trial]:
    """The feasible trials no other feasible trial dominates (ties kept once), by id."""
    ok = feasible_trials(trials)
    if not ok:
        return []
    mask = pareto_mask(np.array([_told(t) for t in ok], dtype=float))
    return [t for t, keep in zip(ok, mask, strict=True) if keep]


def hypervolume(trials: Sequence[Trial]) -> float:
    """Normalised hypervolume of the feasible trials (0 when none)."""
    ok = feasible_trials(trials)
    if not ok:
        return 0.0
    points = np.array([_told(t) for t in ok], dtype=float)
    return _hypervolume(points, np.ones(points.shape[1]))


def hypervolume_history(trials: Sequence[Trial]) -> list[tuple[int, float]]:
    """(evaluations finished, hypervolume) after each finished trial, in finishing order."""
    done = sorted((t for t in trials if t.finished), key=lambda t: (t.finished_at or 0, t.id))
    out = []
    for n in range(1, len(done) + 1):
        out.append((n, hypervolume(done[:n])))
    return out


def best_per_objective(
    trials: Sequence[Trial], objectives: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[float, int]]:
    """Per objective name, the best value over feasible trials and the trial that has it."""
    best: dict[str, tuple[float, int]] = {}
    for t in feasible_trials(trials):
        for o in objectives:
            value = (t.objectives or {}).get(o["name"])
            if value is None:
                continue
            sign = 1 if o["sense"] == "min" else -1
            if o["name"] not in best or sign * value < sign * best[o["name"]][0]:
                best[o["name"]] = (value, t.id)
    return best


__all__ = ["best_per_objective", "feasible_trials", "front", "hypervolume", "hypervolume_history"]
