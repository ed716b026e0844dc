"""The ask/tell protocol: validation, pending points, determinism and save/restore."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import FAST

from optimizer.algorithms import ALGORITHMS, load_optimizer, make_optimizer
from optimizer.core import Observation, OptimizerError, ProblemSpec
from optimizer.problems import make_problem


def _run(opt, problem, evaluations: int, q: int = 1) -> None:
    while len(opt.observations) < evaluations:
        opt.tell([problem.evaluate(p.x) for p in opt.ask(q)])


def test_tell_rejects_bad_observations() -> None:
    opt = make_optimizer("sobol", ProblemSpec(dim=2, num_objectives=2, num_constraints=1))
    with pytest.raises(OptimizerError, match="3 values, problem has 2"):
        opt.tell(Observation.success([0.1, 0.2, 0.3], [1, 2], [0]))
    with pytest.raises(OptimizerError, match="unit cube"):
        opt.tell(Observation.success([0.1, 1.5], [1, 2], [0]))
    with pytest.raises(OptimizerError, match="1 objectives, problem has 2"):
        opt.tell(Observation.success([0.1, 0.2], [1], [0]))
    with pytest.raises(OptimizerError, match="0 constraint values"):
        opt.tell(Observation.success([0.1, 0.2], [1, 2]))
    with pytest.raises(OptimizerError, match=r"Observation\.failure"):
        opt.tell(Observation.success([0.1, 0.2], [1, math.nan], [0]))
    with pytest.raises(OptimizerError, match="q >= 1"):
        opt.ask(0)
    assert opt.observations == []


def test_unknown_names_and_bad_settings_are_clear_errors() -> None:
    spec = ProblemSpec(dim=2, num_objectives=2)
    with pytest.raises(OptimizerError, match="unknown algorithm 'tpe'"):
        make_optimizer("tpe", spec)
    with pytest.raises(OptimizerError, match="bad settings for nsga2"):
        make_optimizer("nsga2", spec, pop=3)
    with pytest.raises(OptimizerError, match="top_directions"):
        make_optimizer("ars-mobo", spec, directions=2, top_directions=4)
    with pytest.raises(OptimizerError, match="unknown problem"):
        make_problem("zdt9")


def test_pending_points_leave_when_told() -> None:
    problem = make_problem("branin-currin")
    opt = make_optimizer("sobol", problem.spec, seed=1)
    proposals = opt.ask(3)
    assert len(opt.pending) == 3
    opt.tell([problem.evaluate(proposals[1].x), proposals[0].failed("out of memory")])
    assert opt.pending == [proposals[2].x]
    assert [o.failed for o in opt.observations] == [False, True]
    assert opt.observations[1].error == "out of memory"


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_seed_repeats_and_resume_continues_exactly(name: str, tmp_path: Path) -> None:
    problem = make_problem("branin-currin")

    def fresh():
        return make_optimizer(name, problem.spec, seed=7, **FAST[name])

    straight = fresh()
    _run(straight, problem, 9, q=1)
    again = fresh()
    _run(again, problem, 9, q=1)
    assert [o.x for o in again.observations] == [o.x for o in straight.observations]

    resumed = fresh()
    _run(resumed, problem, 6, q=1)
    pending = resumed.ask(1)  # saved while a proposal is still being evaluated
    resumed.save(tmp_path / "state.json")
    json.loads((tmp_path / "state.json").read_text())
    restored = load_optimizer(tmp_path / "state.json")
    assert restored.pending == [pending[0].x]
    restored.tell(problem.evaluate(pending[0].x))
    _run(restored, problem, 9, q=1)
    assert [o.x for o in restored.observations] == [o.x for o in straight.observations]


def test_load_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(OptimizerError, match="cannot read optimizer state"):
        load_optimizer(path)
    path.write_text(json.dumps({"algorithm": "sobol", "version": 999}))
    with pytest.raises(OptimizerError, match="version 999"):
        load_optimizer(path)
