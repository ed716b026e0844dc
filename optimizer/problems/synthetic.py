"""botorch's multi-objective test functions, on the unit cube and in our sign conventions.

botorch defines these problems as minimisation with constraint *slack* (feasible where >= 0);
we evaluate them with ``negate=False`` and tell ``-slack`` as the constraint value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from botorch.test_functions.base import ConstrainedBaseTestProblem
from botorch.test_functions.multi_objective import (
    C2DTLZ2,
    DTLZ2,
    BraninCurrin,
    DiscBrake,
    MultiObjectiveTestProblem,
)

from optimizer.problems.base import Problem


class BotorchProblem(Problem):
    """Wraps one botorch `MultiObjectiveTestProblem` instance (`botorch`, minimisation)."""

    def __init__(
        self,
        name: str,
        description: str,
        problem: MultiObjectiveTestProblem,
        ideal: Sequence[float],
    ) -> None:
        self.name = name
        self.description = description
        self.botorch = problem
        self._constrained = isinstance(problem, ConstrainedBaseTestProblem)
        super().__init__(
            dim=problem.dim,
            num_objectives=problem.num_objectives,
            num_constraints=problem.num_constraints if self._constrained else 0,
            ideal=ideal,
            ref_point=problem.ref_point.tolist(),
        )

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        bounds = self.botorch.bounds
        unit = torch.as_tensor(x, dtype=torch.float64).unsqueeze(0)
        point = bounds[0] + unit * (bounds[1] - bounds[0])
        objectives = self.botorch.evaluate_true(point)[0].tolist()
        if not self._constrained:
            return objectives, []
        return objectives, (-self.botorch.evaluate_slack_true(point)[0]).tolist()


def branin_currin() -> BotorchProblem:
    return BotorchProblem(
        "branin-currin",
        "BraninCurrin: 2 inputs, 2 objectives (botorch); ideal (0, 0), ref (18, 6)",
        BraninCurrin(negate=False),
        ideal=(0.0, 0.0),
    )


def dtlz2() -> BotorchProblem:
    return BotorchProblem(
        "dtlz2",
        "DTLZ2: 6 inputs, 3 objectives (botorch); ideal (0, 0, 0), ref (1.1, 1.1, 1.1)",
        DTLZ2(dim=6, num_objectives=3, negate=False),
        ideal=(0.0, 0.0, 0.0),
    )


def c2_dtlz2() -> BotorchProblem:
    return BotorchProblem(
        "c2-dtlz2",
        "C2-DTLZ2: 4 inputs, 2 objectives, 1 constraint (botorch); ideal (0, 0), ref (1.1, 1.1)",
        C2DTLZ2(dim=4, num_objectives=2, negate=False),
        ideal=(0.0, 0.0),
    )


def disc_brake() -> BotorchProblem:
    # Ideal point: componentwise minima of both objectives over 10^6 uniform random feasible
    # designs (1.296, 1.152), rounded down.
    return BotorchProblem(
        "disc-brake",
        "DiscBrake: 4 inputs, 2 objectives, 4 constraints (botorch); ideal (1, 1), "
        "ref (5.7771, 3.9651)",
        DiscBrake(negate=False),
        ideal=(1.0, 1.0),
    )
