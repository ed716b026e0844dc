from __future__ import annotations

import numpy as np
import pytest
import torch

from optimizer.core import OptimizerError
from optimizer.problems import PROBLEMS, make_problem
from optimizer.problems.tinyml import TinyMLProblem


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_problem_shapes(name: str) -> None:
    problem = make_problem(name)
    obs = problem.evaluate(np.full(problem.spec.dim, 0.5))
    assert len(obs.objectives) == problem.spec.num_objectives
    assert len(obs.constraints) == problem.spec.num_constraints


def test_problem_rejects_points_outside_the_cube() -> None:
    with pytest.raises(OptimizerError, match="unit cube with 2 values"):
        make_problem("branin-currin").evaluate([0.5, 1.5])


def test_constraint_sign_is_negated_botorch_slack() -> None:
    problem = make_problem("c2-dtlz2")
    botorch_problem = problem.botorch
    for x in np.random.default_rng(0).random((50, 4)):
        obs = problem.evaluate(x)
        slack = botorch_problem.evaluate_slack_true(
            botorch_problem.bounds[0]
            + torch.as_tensor(x).unsqueeze(0)
            * (botorch_problem.bounds[1] - botorch_problem.bounds[0])
        )
        assert obs.constraints[0] == pytest.approx(-float(slack))
        assert obs.feasible == bool(slack >= 0)


def test_tinyml_resnet20_matches_published_size() -> None:
    """Width 1, 3 blocks per stage, 32 px, no pruning, 8 bits is ResNet-20: about 0.27 M
    parameters and 41 M multiply-accumulates (He et al. 2016)."""
    problem = TinyMLProblem()
    x = np.array([0.4, 0.5, 0.9, 0, 0, 0, 0.99, 0])
    hp = problem.decode(x)
    assert (hp["width"], hp["blocks"], hp["resolution"], hp["weight_bits"]) == (1, 3, 32, 8)
    error, rom_kb, ram_kb, mflops = problem.evaluate(x).objectives
    assert (rom_kb - 30) * 1024 == pytest.approx(0.27e6, rel=0.05)
    assert mflops / 2 == pytest.approx(41, rel=0.05)
    assert 0.07 < error < 0.12
    assert ram_kb < 256 and problem.evaluate(x).feasible


def test_tinyml_trade_offs_point_the_right_way() -> None:
    problem = TinyMLProblem()
    base = np.array([0.4, 0.5, 0.9, 0.2, 0.2, 0.2, 0.99, 0.0])

    def objectives(**changes: float) -> np.ndarray:
        x = base.copy()
        for index, value in changes.items():
            x[int(index[1:])] = value
        return np.array(problem.evaluate(x).objectives)

    ref = objectives()
    wider = objectives(i0=0.8)
    assert wider[0] < ref[0] and (wider[1:] > ref[1:]).all()
    pruned = objectives(i3=0.9, i4=0.9, i5=0.9)
    assert pruned[0] > ref[0] and (pruned[1:] < ref[1:]).all()
    four_bit = objectives(i6=0.3)
    assert four_bit[0] > ref[0] and four_bit[1] < ref[1] and four_bit[3] == ref[3]
    huge = objectives(i0=1.0, i1=0.99)
    assert not problem.evaluate(np.r_[1.0, 0.99, base[2:]]).feasible and huge[1] > 1000
