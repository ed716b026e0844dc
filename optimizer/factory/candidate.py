"""Run one candidate in a child process and collect its record, or the reason it failed.

A search makes hundreds of candidates; one that crashes TensorFlow, runs out of memory, hits a
NaN loss or hangs must come back as a failed candidate, never take the search down. So the
work runs in a spawned child process (a fresh interpreter: no TensorFlow state inherited), its
stdout/stderr go to a log file, progress and the result come back over a pipe, and the parent
turns every way the child can end into a `CandidateResult`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import Splits, load_dataset
from optimizer.factory.errors import CandidateFailed, FactoryError

#: progress(done, total, label) as a child reports it.
OnProgress = Callable[[int, int, str], None]

_child_conn: Connection | None = None


@dataclass
class Outcome:
    """How a child process ended: `ok` with the function's `value`, or not with a `reason`."""

    ok: bool
    value: Any = None
    reason: str = ""
    detail: str = ""


def send_progress(done: int, total: int, label: str) -> None:
    """From inside `run_isolated`'s child: tell the parent how far it got (no-op elsewhere)."""
    if _child_conn is not None:
        _child_conn.send(("progress", done, total, label))


def _child_main(conn: Connection, log_path: str | None, fn: Callable[..., Any],
                args: tuple) -> None:
    global _child_conn
    _child_conn = conn
    if log_path is not None:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        value = fn(*args)
    except CandidateFailed as exc:
        conn.send(("failed", str(exc), ""))
    except MemoryError:
        conn.send(("failed", "out of memory (MemoryError)", traceback.format_exc()))
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if "ResourceExhausted" in type(exc).__name__:
            reason = f"out of memory ({reason})"
        conn.send(("failed", reason, traceback.format_exc()))
    else:
        conn.send(("ok", value))
    finally:
        conn.close()


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        sig = signal.Signals(-exitcode)
        if sig == signal.SIGKILL:
            return "child process was killed (SIGKILL), most often by the out-of-memory killer"
        return f"child process died of signal {sig.name}"
    return f"child process exited with code {exitcode} without a result"


def run_isolated(
    fn: Callable[..., Any],
    *args: Any,
    timeout_s: float | None = None,
    log_path: Path | None = None,
    on_progress: OnProgress | None = None,
) -> Outcome:
    """Call `fn(*args)` in a spawned child process; never raises for what happens there.

    `fn` and `args` must be picklable (a module-level function). The child may call
    `send_progress`; its output goes to `log_path` when given. A child still running after
    `timeout_s` is killed and reported as failed.
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child_main, args=(child, str(log_path) if log_path else None, fn, args),
        daemon=True,
    )
    proc.start()
    child.close()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while True:
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            if parent.poll(wait):
                try:
                    msg = parent.recv()
                except EOFError:
                    proc.join(5)
                    return Outcome(False, reason=_death_reason(proc.exitcode))
                if msg[0] == "progress":
                    if on_progress is not None:
                        on_progress(msg[1], msg[2], msg[3])
                    continue
                proc.join(30)
                if msg[0] == "ok":
                    return Outcome(True, value=msg[1])
                return Outcome(False, reason=msg[1], detail=msg[2])
            if deadline is not None and time.monotonic() >= deadline:
                return Outcome(False, reason=f"timed out after {timeout_s:g} s")
            if not proc.is_alive() and not parent.poll():
                return Outcome(False, reason=_death_reason(proc.exitcode))
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()


@dataclass
class CandidateResult:
    """One candidate: `record` (what record.json holds) and, when ok, the .tflite's path."""

    ok: bool
    record: dict[str, Any]
    model_path: Path | None = None
    reason: str = ""
    detail: str = field(default="", repr=False)


def _make(cfg: CandidateConfig, data: Splits, out_dir: str, threads: int) -> dict[str, Any]:
    from optimizer.factory import pipeline

    total = pipeline.total_steps(cfg)
    done = 0

    def progress(label: str) -> None:
        nonlocal done
        done += 1
        send_progress(done, total, label)

    send_progress(0, total, "start")
    return pipeline.make_candidate(cfg, data, Path(out_dir), progress, threads)


def prepare_out_dir(out: Path) -> None:
    """Create `out` and check that it takes files (run_candidate does this first), so an
    unusable output directory is a clear FactoryError rather than a failure in the child."""
    what = "choose an output directory on a writable filesystem"
    if out.exists() and not out.is_dir():
        raise FactoryError(f"output directory {out} is an existing file; {what}, e.g. runs/c1")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.tflite").unlink(missing_ok=True)
        (out / "train.log").write_bytes(b"")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, NotADirectoryError | FileExistsError):
            reason = "a part of the path is a file, not a directory"
        raise FactoryError(f"cannot write to output directory {out}: {reason}; {what}") from None


def run_candidate(
    cfg: CandidateConfig,
    out_dir: str | Path,
    *,
    timeout_s: float | None = None,
    threads: int = 1,
    on_progress: OnProgress | None = None,
) -> CandidateResult:
    """Make one candidate in a child process: `out_dir/model.tflite`, `out_dir/record.json`
    and `out_dir/train.log` (the child's output).

    Returns a failed result (record with ``"status": "failed"`` and the reason) for anything
    that goes wrong in training; raises FactoryError only for a bad dataset or an output
    directory it cannot write, before any work.
    """
    out = Path(out_dir)
    data = load_dataset(cfg.dataset, cfg.seed)
    prepare_out_dir(out)
    outcome = run_isolated(
        _make, cfg, data, str(out), threads,
        timeout_s=timeout_s, log_path=out / "train.log", on_progress=on_progress,
    )
    if outcome.ok:
        record = {"status": "ok", **outcome.value, "model": "model.tflite"}
        result = CandidateResult(True, record, out / "model.tflite")
    else:
        record = {"status": "failed", "reason": outcome.reason, **cfg.to_dict()}
        result = CandidateResult(False, record, reason=outcome.reason, detail=outcome.detail)
    try:
        (out / "record.json").write_text(json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise FactoryError(f"cannot write {out / 'record.json'}: {exc}") from exc
    return result
