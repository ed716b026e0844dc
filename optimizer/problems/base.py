"""What a benchmark problem is: a cheap function of a unit-cube point, plus its HV normalisation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from optimizer.core import Observation, OptimizerError, ProblemSpec
from optimizer.hypervolume import HypervolumeIndicator


class Problem(ABC):
    """A synthetic problem the algorithms are measured on.

    `ideal` and `ref_point` fix the hypervolume normalisation (see `optimizer.hypervolume`);
    the reference point is also handed to the algorithms through `spec`.
    """

    name: str
    description: str

    def __init__(
        self,
        dim: int,
        num_objectives: int,
        num_constraints: int,
        ideal: Sequence[float],
        ref_point: Sequence[float],
        **structure: Any,
    ) -> None:
        """`structure`: ProblemSpec's optional `discrete`, `positive_objectives` and
        `affine_constraints` (what the GP methods may exploit)."""
        self.spec = ProblemSpec(dim, num_objectives, num_constraints, tuple(ref_point), **structure)
        self.indicator = HypervolumeIndicator(ideal, ref_point)

    def evaluate(self, x: Sequence[float]) -> Observation:
        """Evaluate one point of the unit cube."""
        point = np.asarray(x, dtype=float)
        if point.shape != (self.spec.dim,) or not np.all((point >= 0) & (point <= 1)):
            raise OptimizerError(
                f"{self.name} takes a point of the unit cube with {self.spec.dim} values, got {x}"
            )
        objectives, constraints = self._evaluate(point)
        return Observation.success(point, objectives, constraints)

    @abstractmethod
    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        """Objective values (minimised) and constraint values (feasible where <= 0)."""
