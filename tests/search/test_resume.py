"""Resume reconciles the optimizer's saved state with the trials table (the source of truth),
without training anything: the states a kill can leave behind, built directly in a store."""

from __future__ import annotations

from pathlib import Path

from search_helpers import tiny_config  # type: ignore[import-not-found]

from optimizer.algorithms import make_optimizer
from optimizer.search.config import SearchConfig
from optimizer.search.loop import MAX_ATTEMPTS, resume_search, run_meta
from optimizer.search.store import RunStore, open_run


def _run_with_two_trials(tmp_path: Path) -> tuple[Path, list]:
    cfg = SearchConfig.from_toml(tiny_config(tmp_path / "c.toml", budget=2, algorithm="sobol"))
    run = tmp_path / "run"
    opt = make_optimizer(cfg.algorithm, cfg.problem_spec(), seed=cfg.seed)
    proposals = opt.ask(2)
    with RunStore.create(run, run_meta(cfg)) as store:
        store.add_trials([(p.x, cfg.decode(p.x)) for p in proposals], opt.state_dict())
    return run, proposals


def test_a_result_saved_but_not_yet_told_is_told_on_resume(tmp_path: Path) -> None:
    run, proposals = _run_with_two_trials(tmp_path)
    told = proposals[0].succeeded([0.2, 0.1, 0.3], [-0.9, -0.9, -0.5])
    with RunStore.resume(run) as store:
        # Trial 1 finished while the optimizer was busy asking: saved, state not updated.
        store.mark_started(1, "w", None, None)
        store.finish_trial(1, status="done", observation=told.to_dict(), feasible=True)
        # Trial 2 was interrupted too often: it must be failed, not tried a fourth time.
        for _ in range(MAX_ATTEMPTS):
            store.mark_started(2, "w", None, None)
        assert len(store.optimizer_state()["pending"]) == 2
    summary = resume_search(run, display="plain")
    assert (summary.finished, summary.failed, summary.completed) == (2, 1, True)
    store = open_run(run)
    state = store.optimizer_state()
    assert state["pending"] == []
    observations = {tuple(o["x"]): o for o in state["observations"]}
    assert observations[proposals[0].x]["objectives"] == [0.2, 0.1, 0.3]
    assert observations[proposals[1].x]["objectives"] is None
    second = store.trial(2)
    assert (second.status, second.failure_kind, second.attempts) == ("failed", "interrupted",
                                                                     MAX_ATTEMPTS)
    assert "interrupted 3 times" in second.reason


def test_a_raised_budget_continues_and_a_lower_one_is_refused(tmp_path: Path) -> None:
    import pytest

    from hil.errors import HilError

    run, _ = _run_with_two_trials(tmp_path)
    with pytest.raises(HilError, match="--budget 1 is below the 2 trials"):
        resume_search(run, budget=1, display="plain")
    with RunStore.resume(run) as store:
        store.set_budget(2)
        assert store.budget == 2
