"""Trials as Ray tasks on an existing Ray cluster (`hil search --ray ADDRESS|auto`).

Implements the executor protocol of `optimizer.search.executor` (the search loop stays the
only writer of the run store; this module only runs tasks and reports back):

- Each trial is one Ray task asking for ``num_cpus = search.train_threads`` and, for every
  *physical* board it is measured on (a board whose ``[run] kind`` is not ``qemu``), one unit
  of the custom resource ``board:NAME``. The node a board is attached to offers it
  (``ray start ... --resources '{"board:pico-1": 1}'``), so Ray places the trial there and two
  trials never use one board at the same time. QEMU boards need no resource: they scale with
  the cluster's CPUs.
- In the task, the evaluation runs in a child process, in a temporary directory on that node
  (under ``$TMPDIR/tinyml-hil-ray/``). The child stays in the Ray worker's process group, which
  Ray kills as a whole when it kills the worker (`cancel`, a dead driver), so no training child
  outlives its trial (QEMU dies with its parent anyway); the child also kills that group if
  the worker disappears some other way. A directory whose worker is gone is removed by the next
  trial on that node. The files the outcome names (model, record, profile reports, logs) travel
  back with the result and are written into the trial's directory by the driver, so results
  land in the same run store whether the task ran on this machine or another.
- Progress (training epoch, build, run) goes through a small actor that the driver drains.

Every node needs this project installed at the same version (and, with ``search.boards_dir``,
that folder at the same path); Ray's runtime environments are not used. Ray is imported only
here, and this module only when ``--ray`` is given: the default local path never imports it.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path, PurePosixPath
from typing import Any

from hil.errors import HilError
from optimizer.search.evaluate import INJECT_ENV, TrialOutcome, TrialTask, clear_work_dir
from optimizer.search.executor import Event, Finished, Progress, WorkerInfo, process_start

#: Resource name of a physical board in the Ray cluster.
RESOURCE_PREFIX = "board:"
#: Environment variables of the search process that the tasks get too (the test hook).
FORWARDED_ENV = (INJECT_ENV,)
#: How often the evaluation child checks that the Ray worker running it is still there.
_PARENT_CHECK_S = 0.2
#: Node-local parent of the trials' temporary directories (under the node's temp dir).
NODE_DIR = "tinyml-hil-ray"

Evaluate = Callable[[TrialTask, Callable[[str, str], None]], TrialOutcome]


class RayUnavailable(HilError):
    """Ray is not installed, the cluster cannot be reached, or it lacks a board."""


def board_resources(
    boards: tuple[str, ...] | list[str], boards_dir: str | None
) -> dict[str, float]:
    """Ray custom resources a trial on `boards` needs: one ``board:NAME`` per physical board,
    NAME the board's folder name (an instance spec such as ``pico?probe=ID`` is dropped: the
    node that offers the resource is the one the board is attached to)."""
    from hil.boards import load_board

    root = Path(boards_dir) if boards_dir else None
    return {
        f"{RESOURCE_PREFIX}{name.partition('?')[0]}": 1.0
        for name in boards
        if load_board(name, boards_dir=root).run.kind != "qemu"
    }


@dataclass
class _Running:
    task: TrialTask
    ref: Any  # ray.ObjectRef of the task's result


class RayExecutor:
    """Runs each trial as a Ray task (see the module docstring); at most `workers` at once.

    `evaluate` replaces `optimizer.search.evaluate.evaluate_trial` (tests); it is shipped with
    cloudpickle, so a function defined inside a test works on the cluster's workers.
    """

    name = "ray"

    def __init__(self, address: str, workers: int = 1, *, evaluate: Evaluate | None = None) -> None:
        if workers < 1:
            raise HilError(f"workers must be at least 1, got {workers}")
        try:
            import ray
        except ModuleNotFoundError as exc:
            raise RayUnavailable(
                f"--ray needs Ray, which is not installed ({exc}); run scripts/setup.sh (Ray is "
                "pinned in requirements.lock) or `pip install tinyml-hil[ray]`"
            ) from None
        import cloudpickle

        self._ray = ray
        self.capacity = workers
        self.address = address
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            try:
                ray.init(
                    address=address,
                    namespace="tinyml-hil",
                    log_to_driver=False,
                    logging_level="WARNING",
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayUnavailable(
                    f"cannot connect to the Ray cluster at {address!r}: {exc}. Start one with "
                    "`ray start --head` (boards as resources, e.g. --resources "
                    "'{\"board:pico-1\": 1}' on the node the board is attached to), then give "
                    "its address (host:port, ray://host:10001, or auto on a cluster node)"
                ) from exc
        if evaluate is None:
            from optimizer.search.evaluate import evaluate_trial

            evaluate = evaluate_trial
        self._evaluate_blob = cloudpickle.dumps(evaluate)
        self._env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        self._remote = ray.remote(max_retries=0)(_ray_trial)
        self._sink = ray.remote(num_cpus=0)(_ProgressSink).remote()
        self._running: dict[int, _Running] = {}

    # -- the executor protocol --------------------------------------------------------------------

    def submit(self, task: TrialTask) -> WorkerInfo:
        if len(self._running) >= self.capacity:
            raise HilError(f"all {self.capacity} workers are busy")
        if task.trial_id in self._running:
            raise HilError(f"trial {task.trial_id} is already running")
        resources = board_resources(task.boards, task.boards_dir)
        self._check_cluster(resources)
        clear_work_dir(Path(task.work_dir))
        ref = self._remote.options(
            num_cpus=max(1, task.train_threads), resources=resources,
            name=f"hil-trial-{task.trial_id}",
        ).remote(task, self._evaluate_blob, self._env, self._sink)  # fmt: skip
        self._running[task.trial_id] = _Running(task, ref)
        where = ", ".join(sorted(resources)) or "CPU"
        return WorkerInfo(f"ray ({where})")

    def poll(self, timeout: float) -> list[Event]:
        ray = self._ray
        events: list[Event] = self._drain_progress()
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return events
        refs = [r.ref for r in self._running.values()]
        ray.wait(refs, num_returns=1, timeout=0 if events else timeout)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            return events
        events.extend(self._drain_progress())  # a task's progress comes before its result
        done = set(ready)
        for trial_id, r in list(self._running.items()):
            if r.ref in done:
                del self._running[trial_id]
                events.append(Finished(trial_id, self._result(r)))
        return events

    def cancel(self) -> None:
        for r in self._running.values():
            with contextlib.suppress(Exception):
                self._ray.cancel(r.ref, force=True)
        self._running.clear()

    def close(self) -> None:
        self.cancel()
        with contextlib.suppress(Exception):
            self._ray.kill(self._sink)
        if self._owns_connection:
            with contextlib.suppress(Exception):
                self._ray.shutdown()
            self._owns_connection = False

    def running(self) -> list[int]:
        return list(self._running)

    # -- helpers ----------------------------------------------------------------------------------

    def _check_cluster(self, resources: dict[str, float]) -> None:
        """A board no node offers would leave the trial pending for ever: say so instead."""
        if not resources:
            return
        offered = self._ray.cluster_resources()
        missing = [name for name in resources if offered.get(name, 0) < 1]
        if missing:
            raise RayUnavailable(
                f"no node of the Ray cluster at {self.address!r} offers "
                f"{', '.join(missing)}: start the node each board is attached to with "
                f"`ray start --address ... --resources '{{\"{missing[0]}\": 1}}'` (physical "
                "boards are exclusive Ray resources; QEMU boards need none)"
            )

    def _drain_progress(self) -> list[Event]:
        try:
            items = self._ray.get(self._sink.drain.remote(), timeout=30)
        except Exception:  # progress is nice to have; results never depend on it
            return []
        return [Progress(t, s, g) for t, s, g in items if t in self._running]

    def _result(self, r: _Running) -> TrialOutcome:
        try:
            result = self._ray.get(r.ref)
        except Exception as exc:  # the task or its node died, or it was cancelled
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return TrialOutcome(
                False, "worker", f"the Ray task died without a result: {type(exc).__name__}"
                + (f": {first}" if first else "")
            )  # fmt: skip
        outcome = TrialOutcome.from_dict(result["outcome"])
        work = Path(r.task.work_dir)
        for rel, data in result["files"].items():
            if not _safe_relative(rel):
                continue
            path = work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        outcome.artifacts = {k: v for k, v in outcome.artifacts.items() if (work / v).is_file()}
        return outcome


def _safe_relative(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts


# -- on the cluster ----------------------------------------------------------------------------


class _ProgressSink:
    """Collects (trial_id, status, stage) from running tasks until the driver drains them."""

    def __init__(self) -> None:
        self._items: list[tuple[int, str, str]] = []

    def put(self, trial_id: int, status: str, stage: str) -> None:
        self._items.append((trial_id, status, stage))

    def drain(self) -> list[tuple[int, str, str]]:
        items, self._items = self._items, []
        return items


def _ray_trial(
    task: TrialTask, evaluate_blob: bytes, env: dict[str, str], sink: Any
) -> dict[str, Any]:
    """The Ray task: evaluate in a child process group in a temporary directory, then return
    the outcome and the bytes of every file it names."""
    os.environ.update(env)
    where = f"{socket.gethostname()} (Ray worker pid {os.getpid()})"
    root = Path(tempfile.gettempdir()) / NODE_DIR
    root.mkdir(parents=True, exist_ok=True)
    _sweep_stale(root)
    work = Path(tempfile.mkdtemp(prefix=f"trial-{task.trial_id}-", dir=root))
    (work / _OWNER).write_text(f"{os.getpid()} {process_start(os.getpid())}")
    local = replace(task, work_dir=str(work))
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main,
        args=(sender, evaluate_blob, local, os.getpid()),
        name=f"hil-search-trial-{task.trial_id}",
    )
    try:
        sink.put.remote(task.trial_id, "training", f"started on {where}")
        proc.start()
        sender.close()
        outcome: TrialOutcome | None = None
        while True:
            try:
                if not receiver.poll(0.5):
                    if not proc.is_alive() and not receiver.poll(0):
                        break
                    continue
                msg = receiver.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "progress":
                sink.put.remote(task.trial_id, msg[1], msg[2])
            elif msg[0] == "done":
                outcome = TrialOutcome.from_dict(msg[1])
        proc.join(10)
        if outcome is None:
            outcome = _died(proc.exitcode, where)
        files: dict[str, bytes] = {}
        for rel in outcome.artifacts.values():
            with contextlib.suppress(OSError):
                files[rel] = (work / rel).read_bytes()
        return {"outcome": outcome.to_dict(), "files": files, "where": where}
    finally:
        if proc.pid is not None and proc.is_alive():
            _kill_tree(proc.pid)
            proc.join(5)
        shutil.rmtree(work, ignore_errors=True)


_OWNER = ".owner"


def _sweep_stale(root: Path) -> None:
    """Remove trial directories whose Ray worker is gone (it was killed before cleaning up)."""
    for d in root.glob("trial-*"):
        try:
            pid, start = (d / _OWNER).read_text().split()
        except (OSError, ValueError):
            if time.time() - d.stat().st_mtime < 60:  # being created right now
                continue
            pid, start = "0", ""
        if process_start(int(pid)) != start:
            shutil.rmtree(d, ignore_errors=True)


def _kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    todo, found = [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    for p in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _died(exitcode: int | None, where: str) -> TrialOutcome:
    what = (
        f"was killed by signal {-exitcode}"
        if exitcode is not None and exitcode < 0
        else f"exited with code {exitcode}"
    )
    return TrialOutcome(
        False,
        "worker",
        f"the evaluation process on {where} {what} without a "
        "result (a signal 9 is most often the out-of-memory killer)",
    )


def _child_main(conn: Connection, evaluate_blob: bytes, task: TrialTask, parent: int) -> None:
    """The evaluation child: output to worker.log, takes its process group (the Ray worker's)
    down if the worker disappears."""
    threading.Thread(target=_watch_parent, args=(parent, task.work_dir), daemon=True).start()
    log = os.open(Path(task.work_dir) / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)

    def report(status: str, stage: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {status}: {stage}", flush=True)
        conn.send(("progress", status, stage))

    import cloudpickle

    try:
        evaluate = cloudpickle.loads(evaluate_blob)
        outcome = evaluate(task, report)
    except BaseException as exc:  # a bug fails this trial, with its traceback in worker.log
        traceback.print_exception(exc)
        outcome = TrialOutcome(
            False, "error", f"{type(exc).__name__}: {exc} (traceback in worker.log)"
        )
    if (Path(task.work_dir) / "worker.log").is_file():
        outcome.artifacts.setdefault("worker.log", "worker.log")
    sys.stdout.flush()
    sys.stderr.flush()
    conn.send(("done", outcome.to_dict()))
    conn.close()


def _watch_parent(parent: int, work_dir: str) -> None:
    """If the Ray worker disappears without Ray killing its process group (say the
    out-of-memory killer took only the worker), remove the node-local directory and take the
    group (this process, the training child) down."""
    while True:
        if os.getppid() != parent:
            shutil.rmtree(work_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(0), signal.SIGKILL)
            os._exit(1)
        time.sleep(_PARENT_CHECK_S)


__all__ = ["RESOURCE_PREFIX", "RayExecutor", "RayUnavailable", "board_resources"]
