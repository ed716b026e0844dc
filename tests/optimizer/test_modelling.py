"""The modelling every GP method shares (issue 13): log resources, constraints derived from
objectives, discrete inputs rounded to their bins, and qNParEGO in the same reference box."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import pytest
import torch
from conftest import FAST

from optimizer.algorithms import load_optimizer, make_optimizer
from optimizer.core import OptimizerError, ProblemSpec
from optimizer.models import Modelling, fit_surrogate
from optimizer.problems import Problem, make_problem
from optimizer.space import Bool, Categorical, Float, Int, Space

MODEL_BASED = ("ars-mobo", "qlognehvi", "qnparego")
QUARTERS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _data(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in [0, 1]^2 and a resource spanning three orders of magnitude."""
    x = np.random.default_rng(seed).random((n, 2))
    return x, np.exp(6 * x[:, 0] + 2 * x[:, 1])[:, None]


def _no_constraints(n: int) -> np.ndarray:
    return np.empty((n, 0))


def test_log_modelled_resource_stays_positive_and_is_predicted_better() -> None:
    x, v = _data()
    ok = np.ones(len(x), dtype=bool)
    probe = torch.as_tensor(np.random.default_rng(1).random((300, 2)))
    truth = np.exp(6 * probe[:, 0].numpy() + 2 * probe[:, 1].numpy())
    results = {}
    for logs in ((), (0,)):
        surrogate = fit_surrogate(x, v, _no_constraints(len(x)), ok, Modelling(log_objectives=logs))
        assert surrogate.log_objectives == logs
        with torch.no_grad():
            posterior = surrogate.model.posterior(probe)
            samples = surrogate.sampler(32, seed=0)(posterior)[..., 0]
            error = np.median(np.abs(-posterior.mean[:, 0].numpy() - truth) / truth)
        # Model outputs are negated objectives: a resource is positive where the output is < 0.
        results[logs] = (float((samples < 0).float().mean()), float(error))
    assert results[(0,)][0] == 1.0 and results[()][0] < 0.95
    assert results[(0,)][1] < 0.5 * results[()][1]


def test_an_objective_with_a_non_positive_value_is_not_logged() -> None:
    x, v = _data()
    v[3, 0] = 0.0
    surrogate = fit_surrogate(
        x, v, _no_constraints(len(x)), np.ones(len(x), dtype=bool), Modelling(log_objectives=(0,))
    )
    assert surrogate.log_objectives == ()


def test_an_affine_constraint_comes_from_its_objective_model() -> None:
    x, v = _data()
    ok = np.ones(len(x), dtype=bool)
    budget = v / 100 - 1  # "resource <= 100"
    other = x[:, :1] - 0.5  # not a function of an objective
    constraints = np.hstack([budget, other])
    declared = Modelling(affine_constraints=((0, 0.01, -1.0), None))
    derived = fit_surrogate(x, v, constraints, ok, declared)
    plain = fit_surrogate(x, v, constraints, ok)
    assert (derived.derived_constraints, len(derived.model.models)) == ((0,), 2)
    assert (plain.derived_constraints, len(plain.model.models)) == ((), 3)
    z = derived.sampler(8, seed=0)(derived.model.posterior(torch.rand(5, 2, dtype=torch.float64)))
    assert torch.allclose(derived.constraints[0](z), -z[..., 0] / 100 - 1)
    assert torch.equal(derived.constraints[1](z), z[..., 1])
    # A declaration the observations contradict (an imputed value, a wrong relation): own GP.
    constraints[2, 0] += 0.5
    assert fit_surrogate(x, v, constraints, ok, declared).derived_constraints == ()


def test_discrete_inputs_are_seen_at_their_bin_centres() -> None:
    x, v = _data()
    ok = np.ones(len(x), dtype=bool)
    modelling = Modelling(discrete=(QUARTERS, ()))
    rounded = fit_surrogate(x, v, _no_constraints(len(x)), ok, modelling)
    plain = fit_surrogate(x, v, _no_constraints(len(x)), ok)
    # Two points of the same bin are one configuration: the rounded model cannot tell them apart.
    same_bin = torch.tensor([[0.26, 0.4], [0.49, 0.4]], dtype=torch.float64)
    with torch.no_grad():
        mean = rounded.model.posterior(same_bin).mean[:, 0]
        plain_mean = plain.model.posterior(same_bin).mean[:, 0]
    assert mean[0] == mean[1] and plain_mean[0] != plain_mean[1]
    assert torch.equal(rounded.round(same_bin)[:, 0], torch.tensor([0.375, 0.375]))


class Steps(Problem):
    """x0 picks one of four bit widths (four equal bins), x1 is continuous; the front trades
    the (positive) size against an error that falls with the bit width."""

    name = "steps"
    description = "test problem"

    def __init__(self, **structure: object) -> None:
        super().__init__(2, 2, 0, ideal=(0, 0), ref_point=(2, 40), **structure)

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        bits = 2 + min(3, int(4 * x[0]))
        return (1 / bits + (x[1] - 0.3) ** 2, bits * (1 + 4 * x[1])), ()


@pytest.mark.parametrize("name", MODEL_BASED)
def test_model_proposals_sit_at_bin_centres(name: str) -> None:
    problem = Steps(discrete=(QUARTERS, ()), positive_objectives=(1,))
    opt = make_optimizer(name, problem.spec, seed=0, **FAST[name])
    while len(opt.observations) < 6:
        opt.tell([problem.evaluate(p.x) for p in opt.ask()])
    proposed = [o.x[0] for o in opt.observations[4:]]
    assert all(u in (0.125, 0.375, 0.625, 0.875) for u in proposed), proposed
    off = make_optimizer(name, problem.spec, seed=0, round_discrete=False, **FAST[name])
    off.tell(opt.observations[:4])
    assert off.ask()[0].x[0] not in (0.125, 0.375, 0.625, 0.875)


@pytest.mark.parametrize("name", MODEL_BASED)
def test_every_gp_method_models_the_tinyml_problem_alike(name: str) -> None:
    """All three read the same structure from the problem and search with it: log resources,
    derived budgets, rounded integers (one proposal each, to show the pieces fit together)."""
    problem = make_problem("tinyml")
    opt = make_optimizer(name, problem.spec, seed=0, **FAST[name])
    spec = problem.spec
    assert opt.modelling() == Modelling(spec.discrete, (1, 2, 3), spec.affine_constraints)
    plain = make_optimizer(
        name, spec, log_objectives="none", derive_constraints=False, round_discrete=False
    )
    assert plain.modelling() == Modelling()
    opt.tell([problem.evaluate(p.x) for p in opt.ask(4)])
    x = opt.ask()[0].x
    for i, edges in enumerate(spec.discrete):
        if edges:
            centres = {(a + b) / 2 for a, b in pairwise(edges)}
            assert x[i] in centres


def test_problem_structure_is_checked_and_saved(tmp_path) -> None:
    with pytest.raises(OptimizerError, match="increasing bin edges"):
        ProblemSpec(1, 1, discrete=((0.0, 0.7, 0.5, 1.0),))
    with pytest.raises(OptimizerError, match="unknown objective"):
        ProblemSpec(1, 1, positive_objectives=(1,))
    with pytest.raises(OptimizerError, match="affine_constraints must hold 1"):
        ProblemSpec(1, 1, 1, affine_constraints=((0, 1.0, 0.0), None))
    spec = make_problem("tinyml").spec
    opt = make_optimizer("qlognehvi", spec, seed=0)
    opt.save(tmp_path / "state.json")
    assert load_optimizer(tmp_path / "state.json").spec == spec


def test_space_bins_match_what_decodes_alike() -> None:
    space = Space([
        Int("blocks", 2, low=1, high=5),
        Int("width", 4, low=1, high=16, log=True),
        Categorical("act", "relu", choices=("relu", "relu6", "tanh")),
        Bool("bias", False),
        Float("lr", 0.01, low=1e-4, high=1e-1, log=True),
    ])  # fmt: skip
    edges = space.bin_edges()
    assert edges[-1] == () and len(edges[2]) == 4 and edges[3] == (0.0, 0.5, 1.0)
    for param, e in zip(space.params[:4], edges[:4], strict=True):
        for lo, hi in pairwise(e):
            inside = [param.from_unit(lo + f * (hi - lo)) for f in (1e-9, 0.5, 1 - 1e-9)]
            assert len(set(inside)) == 1  # a bin is one value ...
            assert param.to_unit(inside[0]) == pytest.approx((lo + hi) / 2)  # ... at its centre


def test_search_config_declares_budgets_on_objectives_as_affine() -> None:
    from optimizer.search.config import SearchConfig

    cfg = SearchConfig.from_mapping({
        "data": {"dataset": "digits"},
        "model": {"family": "resnet", "stages": 1},
        "space": {"model": {"base_width": {"low": 4, "high": 16}}},
        "search": {
            "boards": ["qemu-m4"],
            "objectives": ["accuracy", "flash", "latency"],
            "constraints": ["latency_ms <= 50", "accuracy >= 0.8", "macs <= 1000000"],
        },
    })  # fmt: skip
    spec = cfg.problem_spec()
    assert spec.positive_objectives == (1, 2)  # flash and latency, not accuracy
    assert len(spec.discrete) == 1 and len(spec.discrete[0]) == 14  # base_width 4..16
    names = [o.name for o in cfg.objectives]
    for c, rel in zip(cfg.constraints, spec.affine_constraints, strict=True):
        if c.key not in names:
            assert rel is None  # the board's RAM and macs are no objectives here
            continue
        j, a, b = rel
        objective = cfg.objectives[j]
        assert objective.name == c.key
        for value in (0.3, 0.9, 2e4, 3e5):
            assert a * objective.told(value) + b == pytest.approx(c.told(value))
    # The board's flash budget, latency and accuracy: on objectives.
    assert sum(r is not None for r in spec.affine_constraints) == 3


class Slope(Problem):
    """The front f1 + f2 = 1 runs through x0 in [0, 1], but the reference box (f1 <= 0.3) holds
    only x0 <= 0.3 of it: improvement elsewhere adds no hypervolume."""

    name = "slope"
    description = "test problem"

    def __init__(self) -> None:
        super().__init__(2, 2, 0, ideal=(0, 0), ref_point=(0.3, 1.0))

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        return (x[0], 1 - x[0] + x[1]), ()


def test_qnparego_searches_the_reference_box() -> None:
    problem = Slope()
    grid = [problem.evaluate((a, b)) for a in (0.1, 0.5, 0.9) for b in (0.2, 0.7)]
    reach = {}
    for box in (True, False):
        opt = make_optimizer(
            "qnparego", problem.spec, seed=0, reference_box=box, **FAST["qnparego"]
        )
        opt.tell(grid)
        reach[box] = max(p.x[0] for p in opt.ask(4))
    assert reach[True] < 0.4 < 0.6 < reach[False]
