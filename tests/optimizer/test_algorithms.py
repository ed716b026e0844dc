"""Every algorithm: improves on its initial design, respects constraints, survives failures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch
from conftest import FAST

from optimizer.algorithms import ALGORITHMS, make_optimizer
from optimizer.algorithms.nsga2 import constrained_ranking
from optimizer.core import Observation
from optimizer.models import fit_surrogate
from optimizer.problems import Problem, make_problem

MODEL_BASED = ("ars-mobo", "qlognehvi", "qnparego")


class Wedge(Problem):
    """2 inputs, 2 objectives; feasible only where x1 >= 0.7 (30 % of the cube), while the
    second objective pulls x1 down: the front lies on the constraint boundary."""

    name = "wedge"
    description = "test problem"

    def __init__(self) -> None:
        super().__init__(2, 2, 1, ideal=(0, 0), ref_point=(1.1, 2.1))

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        return (x[0], (1 - x[0]) ** 2 + x[1]), (0.7 - x[1],)


def _optimizer(name: str, problem: Problem, seed: int = 0):
    return make_optimizer(name, problem.spec, seed=seed, **FAST[name])


def _design_size(name: str) -> int:
    return FAST[name].get("initial_points", FAST[name].get("population_size", 4))


class Bowls(Problem):
    """2 inputs, 2 objectives: squared distances to two points; the front joins them."""

    name = "bowls"
    description = "test problem"

    def __init__(self) -> None:
        super().__init__(2, 2, 0, ideal=(0, 0), ref_point=(1, 1))

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        a, b = np.array([0.2, 0.3]), np.array([0.7, 0.6])
        return (float(np.sum((x - a) ** 2)), float(np.sum((x - b) ** 2))), ()


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_improves_on_initial_design(name: str) -> None:
    problem = Bowls()
    opt = _optimizer(name, problem)
    while len(opt.observations) < 14:
        opt.tell([problem.evaluate(p.x) for p in opt.ask()])
    history = problem.indicator.history(opt.observations)
    assert history[_design_size(name) - 1] > 0
    assert history[-1] > history[_design_size(name) - 1]


@pytest.mark.parametrize("name", MODEL_BASED)
def test_model_based_search_learns_the_constraint(name: str) -> None:
    problem = Wedge()
    opt = _optimizer(name, problem)
    while len(opt.observations) < 12:
        opt.tell([problem.evaluate(p.x) for p in opt.ask()])
    searched = opt.observations[_design_size(name) :]
    # Uniform sampling would be feasible 30 % of the time.
    assert sum(o.feasible for o in searched) >= 0.6 * len(searched)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_failures_are_handled(name: str) -> None:
    """Evaluations fail where x0 > 0.6 (say, the model did not fit the board): no crash, no
    failed point proposed twice, and the search still finds good points."""
    problem = Bowls()
    opt = _optimizer(name, problem)
    while len(opt.observations) < 12:
        for p in opt.ask():
            opt.tell(p.failed("does not fit") if p.x[0] > 0.6 else problem.evaluate(p.x))
    failed = [o.x for o in opt.observations if o.failed]
    assert failed and len(set(failed)) == len(failed)
    assert problem.indicator(opt.observations) > 0


def test_surrogate_models_where_evaluations_fail() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((16, 2))
    ok = x[:, 0] <= 0.6
    objectives = np.stack([x[ok, 0], x[ok, 1]], axis=1)
    surrogate = fit_surrogate(x, objectives, np.empty((ok.sum(), 0)), ok)
    assert surrogate.x_ok.shape == (ok.sum(), 2) and len(surrogate.constraints) == 1
    probe = torch.tensor([[0.1, 0.5], [0.95, 0.5]], dtype=torch.float64)
    failure_output = surrogate.model.posterior(probe).mean[:, -1]
    assert failure_output[0] < 0 < failure_output[1]  # <= 0 means "expected to succeed"


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_keeps_proposing_when_everything_fails(name: str) -> None:
    problem = make_problem("branin-currin")
    opt = _optimizer(name, problem)
    for _ in range(8):
        opt.tell([p.failed("crash") for p in opt.ask()])
    assert len({o.x for o in opt.observations}) == 8


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_batches_are_distinct_points(name: str) -> None:
    problem = make_problem("c2-dtlz2")
    opt = _optimizer(name, problem)
    opt.tell([problem.evaluate(p.x) for p in opt.ask(6)])
    batch = opt.ask(3)
    assert len(opt.pending) == 3
    xs = np.array([p.x for p in batch])
    gaps = np.abs(xs[:, None] - xs[None]).max(axis=-1) + np.eye(3)
    assert gaps.min() > 1e-6


def test_nsga2_ranks_feasible_then_infeasible_then_failed() -> None:
    y = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [0.0, 0.0], [np.inf, np.inf], [5, 5]])
    violation = np.array([0, 0, 0, 0.5, np.inf, 0.1])
    rank, crowding = constrained_ranking(y, violation)
    assert rank.tolist() == [0, 0, 1, 3, 4, 2]
    assert np.isinf(crowding[:2]).all()


def test_failure_observation_roundtrip() -> None:
    obs = Observation.failure([0.5, 0.5], "")
    assert obs.failed and not obs.feasible and obs.error == "evaluation failed"
    assert Observation.from_dict(obs.to_dict()) == obs
