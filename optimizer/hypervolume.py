"""Hypervolume of the feasible Pareto front, normalised so problems and runs compare.

Normalisation (the one every table in this project uses): each objective is mapped to
``(f - ideal) / (ref - ideal)``, so the ideal point goes to 0 and the reference point to 1;
the *normalised hypervolume* is the volume dominated by the feasible front inside the unit box
``[0, 1]^m``. It lies in [0, 1]; 1 would need a point at the ideal point. Points that are
infeasible (a constraint value > 0), failed, or not strictly better than the reference point
in every objective add nothing. Objectives are minimised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from botorch.utils.multi_objective.hypervolume import Hypervolume

from optimizer.core import Observation, OptimizerError


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` (minimisation; duplicates kept once)."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        others = points[mask]
        dominated = np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1)
        if dominated.any():
            mask[i] = False
            continue
        # Drop later exact duplicates so each point counts once.
        same = np.all(points == points[i], axis=1)
        same[: i + 1] = False
        mask &= ~same
    return mask


def hypervolume(points: np.ndarray, ref_point: Sequence[float]) -> float:
    """Exact volume dominated by `points` (minimisation) and bounded by `ref_point`."""
    ref = np.asarray(ref_point, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, len(ref))
    points = points[np.all(points < ref, axis=1)]
    if len(points) == 0:
        return 0.0
    front = points[pareto_mask(points)]
    if len(ref) == 1:
        return float(ref[0] - front.min())
    # botorch's exact algorithm maximises: negate both sides.
    hv = Hypervolume(ref_point=-torch.as_tensor(ref, dtype=torch.float64))
    return float(hv.compute(-torch.as_tensor(front, dtype=torch.float64)))


class HypervolumeIndicator:
    """Normalised hypervolume for one problem: fixed ideal and reference point."""

    def __init__(self, ideal: Sequence[float], ref_point: Sequence[float]) -> None:
        self.ideal = np.asarray(ideal, dtype=float)
        self.ref_point = np.asarray(ref_point, dtype=float)
        if self.ideal.shape != self.ref_point.shape or not np.all(self.ref_point > self.ideal):
            raise OptimizerError(
                f"reference point {ref_point} must be worse than the ideal point {ideal} "
                "in every objective"
            )

    def normalise(self, objectives: np.ndarray) -> np.ndarray:
        return (np.asarray(objectives, dtype=float) - self.ideal) / (self.ref_point - self.ideal)

    def __call__(self, observations: Sequence[Observation]) -> float:
        """Normalised hypervolume of the feasible front of `observations`."""
        feasible = [o.objectives for o in observations if o.feasible]
        if not feasible:
            return 0.0
        scaled = self.normalise(np.array(feasible, dtype=float))
        return hypervolume(scaled, np.ones(len(self.ideal)))

    def history(self, observations: Sequence[Observation]) -> list[float]:
        """Normalised hypervolume after each evaluation, in the order they were told."""
        history: list[float] = []
        front: list[Observation] = []
        value = 0.0
        for obs in observations:
            if obs.feasible:
                front.append(obs)
                scaled = self.normalise(np.array([o.objectives for o in front], dtype=float))
                keep = pareto_mask(scaled)
                front = [o for o, k in zip(front, keep, strict=True) if k]
                value = self(front)
            history.append(value)
        return history
