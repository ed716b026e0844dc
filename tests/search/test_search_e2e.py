"""`hil search` end to end on real training and real QEMU, kept tiny: one completed run shared
by the assertions, and the same search killed with SIGKILL (during training, during a QEMU
run) and resumed, which must end exactly like the run that was never killed."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from search_helpers import (  # type: ignore[import-not-found]
    REPO,
    descendants,
    hil_command,
    run_hil,
    tiny_config,
    wait_for,
)

from optimizer.search.store import RunStore, open_run

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

BUDGET = 3
OBJECTIVES = ["accuracy", "flash_bytes@qemu-m4", "latency_ms@qemu-m4"]


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    missing = [t for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")


@dataclass
class Run:
    config: Path
    run: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One search that is never interrupted."""
    base = tmp_path_factory.mktemp("search")
    config = tiny_config(base / "tiny.toml", budget=BUDGET)
    proc = run_hil("search", str(config), "--out", str(base / "run"), "--plain")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Run(config, base / "run", proc.stdout, proc.stderr)


def test_the_store_holds_every_trial_with_its_measurements(clean_run: Run) -> None:
    store = open_run(clean_run.run)
    trials = store.trials()
    assert [t.id for t in trials] == list(range(1, BUDGET + 1))
    assert store.budget == BUDGET and [o["name"] for o in store.objectives] == OBJECTIVES
    assert all(t.status == "done" and t.attempts == 1 and t.feasible for t in trials)
    [ram_limit] = [c["name"] for c in store.constraints if c["key"] == "ram_bytes@qemu-m4"]
    for t in trials:
        assert len(t.x) == 2 and t.params["model.base_width"] in range(4, 9)
        assert t.params["model.stages"] == 1  # fixed in the config
        # The objective is the validation accuracy; the test accuracy is recorded beside it.
        assert t.objectives["accuracy"] == t.record["val_accuracy_int8"]
        assert t.metrics["test_accuracy"] == t.record["test_accuracy_int8"]
        report = t.reports["qemu-m4"]
        assert t.objectives["latency_ms@qemu-m4"] == report["latency_ms"] > 0
        assert t.objectives["flash_bytes@qemu-m4"] == report["flash_bytes"] > 0
        assert t.constraints[ram_limit] == report["ram_bytes"]
        assert report["check"] == "passed"
        for name in ("model.tflite", "record.json", "train.log", "profile-qemu-m4"):
            assert (clean_run.run / t.artifacts[name]).is_file()
        assert json.loads((clean_run.run / t.artifacts["profile-qemu-m4"]).read_text()) == report
        assert {"train", "profile@qemu-m4", "build@qemu-m4", "run@qemu-m4"} <= set(t.timings)
        assert t.observation["objectives"][0] == pytest.approx(1 - t.objectives["accuracy"])
    state = store.optimizer_state()
    assert state["algorithm"] == "ars-mobo" and state["pending"] == []
    assert sorted(o["x"] for o in state["observations"]) == sorted(t.x for t in trials)
    assert f"search finished: {BUDGET} of {BUDGET} trials evaluated" in clean_run.stdout
    assert "trial 1 done" in clean_run.stderr and "hv " in clean_run.stderr
    log = (clean_run.run / "search.log").read_text()
    assert "trial 3 profiling: run on qemu-m4" in log and "trial 3 done" in log


def test_a_run_directory_is_never_reused(clean_run: Run) -> None:
    proc = run_hil("search", str(clean_run.config), "--out", str(clean_run.run))
    assert proc.returncode == 1
    assert "already holds a search; continue it with `hil search --resume" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resuming_a_finished_run_changes_nothing(clean_run: Run) -> None:
    from optimizer.search.loop import resume_search

    before = [(t.id, t.finished_at) for t in open_run(clean_run.run).trials()]
    summary = resume_search(clean_run.run, display="plain")
    assert (summary.finished, summary.budget, summary.completed) == (BUDGET, BUDGET, True)
    assert [(t.id, t.finished_at) for t in open_run(clean_run.run).trials()] == before


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(proc: subprocess.Popen[str]) -> dict[int, str]:
    """SIGKILL the search; its workers, training children and QEMU must go with it."""
    below = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    wait_for(lambda: not any(_alive(p) for p in below), 15,
             f"the killed search's processes {below} to end")
    return below


def _snapshot(run: Path) -> dict[int, tuple]:
    store = open_run(run)
    try:
        return {t.id: (t.status, t.finished_at, t.attempts, t.objectives)
                for t in store.trials() if t.finished}
    finally:
        store.close()


def test_a_search_killed_during_training_and_during_a_qemu_run_resumes_losing_nothing(
    clean_run: Run, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    command = hil_command("search", str(clean_run.config), "--out", str(run), "--plain")
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: (run / "search.db").is_file(), 120, "the run store")
        reader = open_run(run)

        def training_last() -> bool:
            # The first trials are done and the last one's training child is running.
            counts = reader.counts()
            last = reader.trials(["training"])
            return counts["done"] + counts["failed"] >= 1 and any(
                t.stage not in (None, "starting", "training") for t in last)

        wait_for(training_last, 600, "a trial in training after others finished", every=0.1)
        # While it runs, a second process on the same run is refused at once.
        other = run_hil("search", "--resume", str(run), timeout=120)
        assert other.returncode == 1 and "is in use by another `hil search`" in other.stderr
        killed = _kill(proc)
        assert any(name.startswith("python") for name in killed.values())
        kill_1 = _snapshot(run)
        in_flight_1 = [t.id for t in reader.trials() if not t.finished]
        assert kill_1 and in_flight_1

        proc = subprocess.Popen([*hil_command("search", "--resume", str(run), "--plain")],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                text=True)

        def qemu_running() -> bool:
            return any(name.startswith("qemu-system") for name in descendants(proc.pid).values())

        wait_for(qemu_running, 600, "a QEMU run of the resumed search", every=0.02)
        killed = _kill(proc)
        assert any(name.startswith("qemu-system") for name in killed.values())
        kill_2 = _snapshot(run)
        reader.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    done = run_hil("search", "--resume", str(run), "--plain")
    assert done.returncode == 0, done.stderr[-3000:]

    store = open_run(run)
    trials = store.trials()
    final = {t.id: (t.status, t.finished_at, t.attempts, t.objectives) for t in trials}
    # The same number of trials as the search that was never killed, each finished once.
    assert len(trials) == BUDGET == len(open_run(clean_run.run).trials())
    assert [t.id for t in trials] == list(range(1, BUDGET + 1))
    assert all(t.finished for t in trials)
    assert len({tuple(t.x) for t in trials}) == BUDGET  # no point evaluated twice
    # Completed evaluations were kept as they were: not lost, not run again.
    for snapshot in (kill_1, kill_2):
        for trial_id, row in snapshot.items():
            assert final[trial_id] == row
    # Trials in flight at a kill were evaluated again with the same hyperparameters.
    for trial_id in in_flight_1:
        assert final[trial_id][2] >= 2
    assert sum(t.attempts for t in trials) > BUDGET
    # The optimizer was told every trial once and waits for nothing.
    state = store.optimizer_state()
    assert state["pending"] == []
    assert Counter(tuple(o["x"]) for o in state["observations"]) == Counter(
        tuple(t.x) for t in trials)
    assert [e["kind"] for e in store.events()].count("resumed") == 2
    # The seeded initial design is the same as in the run that was never killed.
    clean = open_run(clean_run.run).trials()
    assert [t.x for t in trials[:2]] == [t.x for t in clean[:2]]


def test_a_locked_run_refuses_resume_without_a_traceback(tmp_path: Path) -> None:
    run = tmp_path / "run"
    store = RunStore.create(run, {"budget": 1, "objectives": [], "constraints": []})
    try:
        proc = run_hil("search", "--resume", str(run), timeout=120)
    finally:
        store.close()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"run directory {run} is in use by another `hil search` (pid" in proc.stderr


def test_sigterm_stops_the_workers_and_leaves_a_resumable_run(tmp_path: Path) -> None:
    """SIGTERM goes the way of Ctrl-C (KeyboardInterrupt), so this covers both."""
    run = tmp_path / "run"
    config = tiny_config(tmp_path / "tiny.toml", budget=BUDGET)
    command = hil_command("search", str(config), "--out", str(run), "--plain")
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_for(lambda: (run / "search.db").is_file(), 120, "the run store")
        reader = open_run(run)
        wait_for(lambda: reader.trials(["training"]), 300, "a trial in training", every=0.1)
        below = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert f"stopped; continue with `hil search --resume {run}`" in err
    assert "Traceback" not in err
    wait_for(lambda: not any(_alive(p) for p in below), 15, "the workers to end")
    assert any(t.status in ("training", "profiling") for t in reader.trials())  # resumable
    assert [e["kind"] for e in reader.events()][-1] == "stopped"
    reader.close()
