"""The run store on its own: transactions, read API, requeue after a stop, the lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.search.store import RunLocked, RunStore, StoreError, open_run

META = {"budget": 3, "objectives": [{"name": "accuracy"}], "constraints": []}


def test_trials_go_from_proposed_to_finished_and_readers_see_them(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunStore.create(run, META) as store:
        ids = store.add_trials([([0.1, 0.2], {"a": 1}), ([0.3, 0.4], {"a": 2})], {"step": 1})
        assert ids == [1, 2]
        store.mark_started(1, "local pid 1", 1, "99")
        store.update_stage(1, "profiling", "run on qemu-m4")
        reader = open_run(run)  # read-only, while the writer holds the lock
        assert reader.trial(1).status == "profiling" and reader.trial(1).attempts == 1
        store.finish_trial(
            1, status="done", observation={"x": [0.1, 0.2], "objectives": [0.5]}, feasible=True,
            objectives={"accuracy": 0.5}, reports={"qemu-m4": {"latency_ms": 1.5}},
            artifacts={"record.json": "trials/000001/record.json"}, optimizer_state={"step": 2},
        )
        with pytest.raises(StoreError, match="cannot finish twice"):
            store.finish_trial(1, status="failed", observation={}, feasible=False)
        t = reader.trial(1)
        assert (t.status, t.feasible, t.objectives, t.stage) == ("done", True, {"accuracy": 0.5},
                                                                 None)
        assert t.reports == {"qemu-m4": {"latency_ms": 1.5}}
        assert reader.optimizer_state() == {"step": 2}
        assert reader.counts() == {"proposed": 1, "training": 0, "profiling": 0, "done": 1,
                                   "failed": 0}
        assert reader.budget == 3 and [x.id for x in reader.trials(["proposed"])] == [2]
        reader.close()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    with RunStore.create(tmp_path / "run", META) as store:
        with pytest.raises(ValueError):
            store.add_trials([([0.5], {"a": 1})], {"bad": float("nan")})  # not JSON: rolled back
        assert store.trials() == [] and store.optimizer_state() is None


def test_requeue_sends_unfinished_trials_back_to_proposed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with RunStore.create(run, META) as store:
        store.add_trials([([0.1], {}), ([0.2], {}), ([0.3], {})], {})
        store.mark_started(1, "w", None, None)
        store.mark_started(2, "w", None, None)
        store.finish_trial(2, status="failed", observation={}, feasible=False, reason="x")
    with RunStore.resume(run) as store:
        again = store.requeue_in_flight()
        assert [(t.id, t.status, t.attempts) for t in again] == [(1, "proposed", 1),
                                                                 (3, "proposed", 0)]
        assert store.trial(2).status == "failed"


def test_a_second_process_is_refused_while_the_first_holds_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = "from optimizer.search.store import RunStore; import sys; RunStore.resume(sys.argv[1])"
    with RunStore.create(run, META):
        other = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True,
                               text=True, timeout=120, check=False)
        assert other.returncode != 0
        assert "RunLocked" in other.stderr and "is in use by another `hil search`" in other.stderr
        with pytest.raises(RunLocked, match=r"pid \d+ since"):
            RunStore.resume(run)  # a second open file in this process is refused the same way
    # Released on close (and by the kernel when a holder dies).
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_an_existing_run_is_not_overwritten_and_a_missing_one_is_explained(tmp_path: Path) -> None:
    run = tmp_path / "run"
    RunStore.create(run, META).close()
    with pytest.raises(StoreError, match="already holds a search; continue it with"):
        RunStore.create(run, META)
    with pytest.raises(StoreError, match="is not a `hil search` run directory"):
        open_run(tmp_path / "elsewhere")
