"""`hil search --ray`: trials as Ray tasks on a local Ray cluster started for these tests, with
fake physical boards as custom resources. Shows that two trials never share a board (their
recorded start/end times never overlap), that trials on different boards or on QEMU boards do
run side by side, that results come back into the same run store, and that the default local
path never imports Ray."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Keep the test cluster on the loopback interface (Ray otherwise picks the machine's address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from optimizer.search import loop
from optimizer.search.evaluate import TrialOutcome, TrialTask
from optimizer.search.executor import Finished, Progress
from optimizer.search.store import open_run, trial_dir

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
BOARDS = {"pico-1": "pyocd", "pico-2": "pyocd", "pico-3": "pyocd", "emu": "qemu"}
RUN_TABLES = {
    "qemu": 'kind = "qemu"\nmachine = "mps2-an386"',
    "pyocd": 'kind = "pyocd"\ntarget = "rp2040"',
}
#: pico-3 exists as a board folder but no node offers it.
OFFERED = {"board:pico-1": 1, "board:pico-2": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A one-node Ray cluster (2 CPUs, boards pico-1 and pico-2), stopped afterwards."""
    pytest.importorskip("ray", reason="ray is not installed (it is pinned in requirements.lock)")
    temp = tempfile.mkdtemp(prefix="hil-ray-")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    log = Path(temp) / "ray-start.log"
    cmd = [str(RAY), "start", "--head", "--block", "--port", str(port),
           "--node-ip-address", "127.0.0.1", "--num-cpus", "2",
           "--resources", json.dumps(OFFERED), "--include-dashboard=false",
           "--ray-client-server-port", str(_free_port()), "--disable-usage-stats",
           "--temp-dir", temp]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start` did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)  # `ray start --block` stops what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        _kill_session(proc.pid)  # whatever is still draining: the cluster is ours alone
        proc.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (the `ray start` above and all it started)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:
                    os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def boards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Board folders (board.toml only: the fake evaluation never builds)."""
    root = tmp_path_factory.mktemp("boards")
    for name, kind in BOARDS.items():
        (root / name).mkdir()
        run = RUN_TABLES[kind]
        (root / name / "board.toml").write_text(
            f'name = "{name}"\ndescription = "fake {kind} board for the Ray tests"\n'
            'core = "cortex-m0plus"\ncpu_flags = ["-mcpu=cortex-m0plus", "-mthumb"]\n'
            "clock_hz = 125_000_000\nflash_bytes = 2_097_152\nram_bytes = 270_336\n"
            f'timing_source = "systick"\n[run]\n{run}\n[serial]\nbaudrate = 115200\n'
        )
    return root


def fake_evaluate(
    seconds: float, pid_file: Path | None = None
) -> Callable[[TrialTask, Callable[[str, str], None]], Any]:
    """An evaluation that takes `seconds`, records when it ran and where, writes a model file
    and returns made-up measurements. Defined inside a function, so cloudpickle ships it by
    value to the cluster's workers."""

    def evaluate(task: TrialTask, report: Callable[[str, str], None]) -> TrialOutcome:
        start = time.time()
        if pid_file is not None:  # a stand-in for the training child, and where it all runs
            helper = subprocess.Popen(["sleep", str(seconds)])
            pid_file.write_text(f"{os.getpid()} {helper.pid}\n{task.work_dir}")
        report("training", "fake epoch 1/1")
        time.sleep(seconds)
        report("profiling", f"fake run on {', '.join(task.boards)}")
        work = Path(task.work_dir)
        (work / "model.tflite").write_bytes(f"model of trial {task.trial_id}".encode())
        reports = {
            b: {"flash_bytes": 100_000 + 1_000 * task.trial_id, "ram_bytes": 20_000,
                "latency_ms": 10.0 + task.trial_id, "macs": 1_000, "params": 100}
            for b in task.boards
        }  # fmt: skip
        for b, rep in reports.items():
            (work / f"profile-{b}.json").write_text(json.dumps(rep))
        record = {"val_accuracy_int8": 0.5 + 0.05 * task.trial_id,
                  "test_accuracy_int8": 0.45 + 0.05 * task.trial_id,
                  "ran_in": task.work_dir, "pid": os.getpid()}  # fmt: skip
        artifacts = {
            "model.tflite": "model.tflite",
            **{f"profile-{b}": f"profile-{b}.json" for b in task.boards},
        }
        return TrialOutcome(
            True,
            record=record,
            reports=reports,
            artifacts=artifacts,
            timings={"t_start": start, "t_end": time.time()},
        )

    return evaluate


def _task(trial_id: int, board: str, boards_dir: Path, work: Path) -> TrialTask:
    return TrialTask(
        trial_id=trial_id,
        attempt=1,
        params={},
        dataset="digits",
        seed=0,
        boards=(board,),
        boards_dir=str(boards_dir),
        work_dir=str(work / f"{trial_id:06d}"),
        train_timeout_s=60,
    )


def _run_all(
    executor: Any, tasks: list[TrialTask], timeout: float = 240
) -> tuple[dict[int, TrialOutcome], dict[int, list[str]]]:
    for task in tasks:
        executor.submit(task)
    outcomes: dict[int, TrialOutcome] = {}
    stages: dict[int, list[str]] = {t.trial_id: [] for t in tasks}
    deadline = time.monotonic() + timeout
    while len(outcomes) < len(tasks):
        assert time.monotonic() < deadline, f"only {sorted(outcomes)} finished in {timeout} s"
        for event in executor.poll(0.5):
            if isinstance(event, Progress):
                stages[event.trial_id].append(event.stage)
            elif isinstance(event, Finished):
                outcomes[event.trial_id] = event.outcome
    return outcomes, stages


def _overlap(a: TrialOutcome, b: TrialOutcome) -> bool:
    return a.timings["t_start"] < b.timings["t_end"] and b.timings["t_start"] < a.timings["t_end"]


def test_the_local_path_never_imports_ray() -> None:
    code = (
        "import sys\n"
        "from optimizer.search import cli, loop, report\n"
        "from optimizer.search.executor import make_executor\n"
        "make_executor(2).close()\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if 'ray' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=300)


def test_physical_boards_are_resources_qemu_boards_are_not() -> None:
    from optimizer.search.ray_executor import board_resources

    assert board_resources(("qemu-m4", "qemu-m0"), None) == {}
    assert board_resources(("qemu-m4", "pico?probe=E6614103E7A1B2C3", "nano33ble"), None) == {
        "board:pico": 1.0,
        "board:nano33ble": 1.0,
    }


def test_a_board_is_never_shared_while_others_run_side_by_side(
    cluster: str, boards_dir: Path, tmp_path: Path
) -> None:
    from optimizer.search.ray_executor import RayExecutor

    executor = RayExecutor(cluster, workers=4, evaluate=fake_evaluate(1.5))
    try:
        tasks = [
            _task(i, b, boards_dir, tmp_path)
            for i, b in enumerate(["pico-1", "pico-1", "pico-2", "pico-2"], start=1)
        ]
        boards_out, stages = _run_all(executor, tasks)
        emu_out, _ = _run_all(executor, [_task(i, "emu", boards_dir, tmp_path) for i in (5, 6)])
    finally:
        executor.close()
    assert all(o.ok for o in [*boards_out.values(), *emu_out.values()])
    # the same board: never at the same time, although 2 CPUs and 4 slots were free
    assert not _overlap(boards_out[1], boards_out[2])
    assert not _overlap(boards_out[3], boards_out[4])
    # different boards, and QEMU boards (no board resource), do run side by side
    assert any(_overlap(boards_out[a], boards_out[b]) for a, b in
               itertools.product((1, 2), (3, 4)))  # fmt: skip
    assert _overlap(emu_out[5], emu_out[6])
    # progress came through, and the files came back into each trial's directory
    for trial_id, seen in stages.items():
        assert "fake epoch 1/1" in seen, seen
        work = tmp_path / f"{trial_id:06d}"
        assert (work / "model.tflite").read_bytes() == f"model of trial {trial_id}".encode()
        assert "worker.log" in boards_out[trial_id].artifacts
        assert "fake epoch" in (work / "worker.log").read_text()
        assert boards_out[trial_id].record["ran_in"] != str(work)  # a node-local directory


def test_a_board_no_node_offers_is_an_error(cluster: str, boards_dir: Path, tmp_path: Path) -> None:
    from optimizer.search.ray_executor import RayExecutor, RayUnavailable

    executor = RayExecutor(cluster, workers=1, evaluate=fake_evaluate(0.1))
    try:
        with pytest.raises(RayUnavailable, match=r"offers board:pico-3.*--resources"):
            executor.submit(_task(1, "pico-3", boards_dir, tmp_path))
    finally:
        executor.close()


def test_cancel_kills_the_evaluation(cluster: str, boards_dir: Path, tmp_path: Path) -> None:
    """cancel() leaves no process behind (the evaluation and its children), and the next
    trial on the node removes the directory of the killed one."""
    from optimizer.search.ray_executor import RayExecutor

    pid_file = tmp_path / "evaluation.pid"
    executor = RayExecutor(cluster, workers=1, evaluate=fake_evaluate(300, pid_file))
    try:
        executor.submit(_task(1, "emu", boards_dir, tmp_path))
        deadline = time.monotonic() + 120
        while not pid_file.is_file() or "\n" not in pid_file.read_text():
            assert time.monotonic() < deadline, "the evaluation never started"
            executor.poll(0.5)
        pids_text, work = pid_file.read_text().split("\n")
        pids = [int(p) for p in pids_text.split()]
        assert all(_alive(p) for p in pids) and Path(work).is_dir()
        executor.cancel()
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids):
            assert time.monotonic() < deadline, f"processes {pids} outlived cancel()"
            time.sleep(0.2)
    finally:
        executor.close()
    executor = RayExecutor(cluster, workers=1, evaluate=fake_evaluate(0.1))
    try:
        outcomes, _ = _run_all(executor, [_task(2, "emu", boards_dir, tmp_path)])
    finally:
        executor.close()
    assert outcomes[2].ok
    assert not Path(work).exists(), "the killed trial's node-local directory is left"


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


SEARCH = """
[data]
dataset = "digits"

[model]
family = "resnet"
stages = 1
blocks_per_stage = 1
base_width = 4

[train]
epochs = 1

[space.model]
base_width = {{ low = 4, high = 8 }}

[search]
boards = {boards}
boards_dir = "{boards_dir}"
objectives = ["accuracy", "flash", "latency"]
constraints = ["latency_ms <= 50"]
algorithm = "sobol"
budget = {budget}
workers = 2
seed = 0
profile_runs = 3
train_timeout_s = 300
"""


def test_search_results_come_back_into_the_store(
    cluster: str, boards_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole loop with the Ray executor: 4 trials on one physical board with 2 workers."""
    from optimizer.search.ray_executor import RayExecutor

    def make(workers: int, ray_address: str | None = None, **options: Any) -> RayExecutor:
        assert ray_address == cluster
        return RayExecutor(ray_address, workers=workers, evaluate=fake_evaluate(1.0))

    monkeypatch.setattr(loop, "make_executor", make)
    config = tmp_path / "search.toml"
    config.write_text(SEARCH.format(boards='["pico-1"]', boards_dir=boards_dir, budget=4))
    run = tmp_path / "run"
    summary = loop.start_search(config, run, ray_address=cluster, display="plain")
    assert summary.completed and summary.finished == 4
    store = open_run(run)
    trials = store.trials()
    store.close()
    assert [t.status for t in trials] == ["done"] * 4
    for t in trials:
        assert t.worker == "ray (board:pico-1)"
        assert t.objectives["accuracy"] == pytest.approx(0.5 + 0.05 * t.id)
        assert t.objectives["latency_ms@pico-1"] == pytest.approx(10.0 + t.id)
        assert t.reports["pico-1"]["flash_bytes"] == 100_000 + 1_000 * t.id
        model = run / t.artifacts["model.tflite"]
        assert model.parent == trial_dir(run, t.id)
        assert model.read_bytes() == f"model of trial {t.id}".encode()
        assert (run / t.artifacts["worker.log"]).is_file()
    spans = sorted((t.timings["t_start"], t.timings["t_end"]) for t in trials)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "two trials used board pico-1 at the same time"


@pytest.mark.qemu
@pytest.mark.slow
def test_hil_search_ray_trains_and_profiles_for_real(cluster: str, tmp_path: Path) -> None:
    """`hil search --ray`: the real evaluation (training child, QEMU) inside Ray tasks."""
    config = tmp_path / "search.toml"
    config.write_text(SEARCH.format(boards='["qemu-m4"]', boards_dir=REPO / "boards", budget=2))
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "search", str(config), "--out", str(run), "--ray",
         cluster, "--plain"],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = open_run(run)
    trials = store.trials()
    store.close()
    assert [t.status for t in trials] == ["done", "done"], [t.reason for t in trials]
    for t in trials:
        assert t.worker == "ray (CPU)"
        assert t.reports["qemu-m4"]["timing_source"] == "qemu-icount"
        assert (run / t.artifacts["model.tflite"]).stat().st_size > 0
        assert (run / t.artifacts["record.json"]).is_file()
        assert (run / t.artifacts["profile-qemu-m4"]).is_file()
