"""Where trials run: the executor protocol, and the local process pool that implements it.

The search loop talks to an executor through four calls (`Executor`): `submit` a
`TrialTask`, `poll` for `Progress` and `Finished` events, `cancel` everything running, and
`close`. The loop alone touches the run store; executors only run tasks and report, so a
second implementation (Ray tasks on a cluster, `--ray ADDRESS`) plugs in without changing the
loop. Contract for an implementation:

- `capacity`: how many trials may run at once; the loop never submits more.
- `submit(task)` starts `optimizer.search.evaluate.evaluate_trial(task, report)` somewhere
  and returns a `WorkerInfo` saying where.
- `poll(timeout)` returns the events since the last call (waiting up to `timeout` seconds
  when there are none): `Progress(trial_id, status, stage)` whenever the evaluation reports,
  and exactly one `Finished(trial_id, outcome)` per submitted task, including when the worker
  died (then a failed outcome of kind "worker").
- Before `Finished`, the files named in `outcome.artifacts` must be in `task.work_dir` on the
  machine that runs the loop (a remote executor ships them back).
- `cancel()` stops every running evaluation now; those trials get no `Finished` event.

`make_executor` picks the implementation; the local path never imports Ray.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from hil.errors import HilError
from optimizer.search.evaluate import TrialOutcome, TrialTask, clear_work_dir, error_outcome

#: How often a worker checks that the search process is still there.
_PARENT_CHECK_S = 0.2


@dataclass(frozen=True)
class Progress:
    trial_id: int
    status: str  # "training" or "profiling"
    stage: str


@dataclass(frozen=True)
class Finished:
    trial_id: int
    outcome: TrialOutcome


Event = Progress | Finished


@dataclass(frozen=True)
class WorkerInfo:
    """Where a trial runs: a label for people, and (local executor) the worker's process id
    and start time, with which a resumed search removes leftovers of a killed one."""

    label: str
    pid: int | None = None
    start: str | None = None


class Executor(Protocol):
    """What the search loop needs from a way of running trials (see the module docstring)."""

    name: str
    capacity: int

    def submit(self, task: TrialTask) -> WorkerInfo: ...

    def poll(self, timeout: float) -> list[Event]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def make_executor(workers: int, ray_address: str | None = None, **options: Any) -> Executor:
    """The local process pool, or (with `ray_address`) the Ray executor when installed."""
    if not ray_address:
        return LocalExecutor(workers)
    try:
        from optimizer.search.ray_executor import RayExecutor  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name != "optimizer.search.ray_executor":
            raise HilError(f"--ray needs the Ray executor's dependencies: {exc}") from exc
        raise HilError(
            "--ray is not available yet: this version runs trials in a local process pool "
            "only; drop --ray (use --workers N for parallel trials on this machine)"
        ) from None
    return RayExecutor(ray_address, workers=workers, **options)  # type: ignore[no-any-return]


# -- local process pool --------------------------------------------------------------------------


@dataclass
class _Running:
    task: TrialTask
    proc: Any  # multiprocessing Process (spawn context)
    conn: Connection
    outcome: TrialOutcome | None = None
    closed: bool = False


class LocalExecutor:
    """Each trial in a fresh spawned process (at most `capacity` at once).

    A fresh process per trial, rather than a long-lived pool, because a trial can take its
    process down (TensorFlow, the out-of-memory killer): that must fail one trial, not the
    pool. Each worker leads its own process group (the training child joins it), so `cancel`
    kills all of a trial's processes; QEMU dies with the worker (hil's targets see to that).
    A worker whose search process disappears (SIGKILL) kills its group within a fraction of
    a second, so nothing keeps running after the search is gone.
    """

    name = "local"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise HilError(f"workers must be at least 1, got {workers}")
        self.capacity = workers
        self._ctx = mp.get_context("spawn")
        self._running: dict[int, _Running] = {}

    def submit(self, task: TrialTask) -> WorkerInfo:
        if len(self._running) >= self.capacity:
            raise HilError(f"all {self.capacity} workers are busy")
        if task.trial_id in self._running:
            raise HilError(f"trial {task.trial_id} is already running")
        clear_work_dir(Path(task.work_dir))
        receiver, sender = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_worker_main, args=(sender, task, os.getpid()),
            name=f"hil-search-trial-{task.trial_id}",
        )
        proc.start()
        sender.close()
        self._running[task.trial_id] = _Running(task, proc, receiver)
        return WorkerInfo(f"local pid {proc.pid}", proc.pid, process_start(proc.pid))

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return events
        handles: list[Any] = []
        for r in self._running.values():
            handles.append(r.proc.sentinel)
            if not r.closed:
                handles.append(r.conn)
        wait(handles, timeout)
        for trial_id, r in list(self._running.items()):
            events.extend(self._drain(r))
            if r.proc.is_alive() and not r.closed:
                continue
            if r.proc.is_alive():  # pipe closed but the process lingers: give it a moment
                r.proc.join(2)
                if r.proc.is_alive():
                    _kill_group(r.proc.pid)
            r.proc.join(5)
            events.extend(self._drain(r))
            outcome = r.outcome or _died(r.proc.exitcode)
            r.conn.close()
            del self._running[trial_id]
            events.append(Finished(trial_id, outcome))
        return events

    def _drain(self, r: _Running) -> list[Event]:
        events: list[Event] = []
        while not r.closed:
            try:
                if not r.conn.poll():
                    break
                msg = r.conn.recv()
            except (EOFError, OSError):
                r.closed = True
                break
            if msg[0] == "progress":
                events.append(Progress(r.task.trial_id, msg[1], msg[2]))
            elif msg[0] == "done":
                r.outcome = TrialOutcome.from_dict(msg[1])
        return events

    def running(self) -> list[int]:
        return list(self._running)

    def cancel(self) -> None:
        for r in self._running.values():
            _kill_group(r.proc.pid)
        for r in self._running.values():
            r.proc.join(5)
            r.conn.close()
        self._running.clear()

    def close(self) -> None:
        self.cancel()


def _died(exitcode: int | None) -> TrialOutcome:
    if exitcode is not None and exitcode < 0:
        what = f"was killed by signal {signal.Signals(-exitcode).name}"
        if -exitcode == signal.SIGKILL:
            what += " (most often the out-of-memory killer)"
    else:
        what = f"exited with code {exitcode}"
    return TrialOutcome(False, "worker", f"the worker process {what} without a result")


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)


def process_start(pid: int | None) -> str | None:
    """A process's start time (Linux /proc), which tells a live process from a reused pid."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def kill_leftovers(pid: int | None, start: str | None) -> bool:
    """Kill what is left of a worker of a search that was killed: every process in the
    worker's group that started no earlier than the worker did. True if any was found."""
    if pid is None or start is None:
        return False
    found = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pgrp, started = int(fields[2]), fields[19]
        if pgrp == pid and int(started) >= int(start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
    return found


# -- inside the worker process -------------------------------------------------------------------


def _worker_main(conn: Connection, task: TrialTask, parent: int) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    work = Path(task.work_dir)
    log = os.open(work / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)

    def report(status: str, stage: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {status}: {stage}", flush=True)
        conn.send(("progress", status, stage))

    from optimizer.search.evaluate import evaluate_trial

    try:
        outcome = evaluate_trial(task, report)
    except BaseException as exc:  # a bug must fail this trial, not hang the search
        outcome = error_outcome(exc)
    sys.stdout.flush()
    conn.send(("done", outcome.to_dict()))
    conn.close()


def _watch_parent(parent: int) -> None:
    """If the search process dies (even SIGKILL), take this worker's whole group with it."""
    while True:
        if os.getppid() != parent:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(0), signal.SIGKILL)
            os._exit(1)
        time.sleep(_PARENT_CHECK_S)


__all__ = [
    "Event",
    "Executor",
    "Finished",
    "LocalExecutor",
    "Progress",
    "WorkerInfo",
    "kill_leftovers",
    "make_executor",
    "process_start",
]
