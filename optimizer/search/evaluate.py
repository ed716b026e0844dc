"""One trial's evaluation, as a worker runs it: train the candidate, profile it on every board.

Runs inside a worker process (never in the search loop's process): `evaluate_trial` never
raises for what a candidate does; every way a trial can go wrong comes back as a
`TrialOutcome` with a `failure_kind` and a reason in words:

=============  ======================================================================
kind           what happened
=============  ======================================================================
training       training crashed (a dead child process, an exception, out of memory,
               an op the bench lacks)
diverged       the loss became NaN/inf
timeout        training ran past ``search.train_timeout_s``
too-large      the model does not fit a board's flash or RAM (`needs` holds the bytes
               the linker reported, or the weights/arena lower bound)
build          compiling or linking the generated project failed
hang           the target stopped answering
fault          the target reported a HardFault (or QEMU a CPU lockup)
target         any other target or link failure
model          the bench cannot read or run the model
mismatch       the device's outputs differ from the reference by more than 1 LSB
=============  ======================================================================

Only a broken environment (toolchain or emulator missing, unusable dataset) sets `fatal`:
the search stops instead of failing every remaining trial the same way.

Test hook (honest and minimal, for tests/search only): ``HIL_SEARCH_INJECT="3:hang,5:diverge"``
makes trial 3 and trial 5 fail in that way. ``train-crash`` runs a real child process that
aborts (so the factory's own crash handling reports it); ``diverge`` has the training child
fail the way the factory reports a NaN loss; ``build-fail``, ``hang`` and ``fault`` raise,
where `hil.profile` would be called, the error the bench raises for that failure;
``mismatch`` runs the real profile and then treats its outputs as differing. Every injected
reason says "injected". The bench's own detection of these failures is tested in tests/.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import HilError

#: report(status, stage): status "training" or "profiling", stage a short description.
Reporter = Callable[[str, str], None]

INJECT_ENV = "HIL_SEARCH_INJECT"
INJECTABLE = ("train-crash", "diverge", "build-fail", "hang", "fault", "mismatch")
FAILURE_KINDS = (
    "training", "diverged", "timeout", "too-large", "build", "flash", "connect", "hang",
    "fault", "target", "model", "mismatch", "worker", "interrupted", "error",
)  # fmt: skip


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to evaluate one trial (picklable, no live objects)."""

    trial_id: int
    attempt: int
    params: dict[str, Any]
    dataset: str
    seed: int
    boards: tuple[str, ...]
    boards_dir: str | None
    work_dir: str
    train_timeout_s: float
    train_threads: int = 1
    profile_runs: int = 5


@dataclass
class TrialOutcome:
    """What a worker sends back. `artifacts` are file names relative to the task's work_dir."""

    ok: bool
    failure_kind: str | None = None
    reason: str | None = None
    record: dict[str, Any] | None = None
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs: dict[str, dict[str, int]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    fatal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialOutcome:
        return cls(**data)


def parse_injections(text: str | None) -> dict[int, str]:
    """``"3:hang,5:diverge"`` -> {3: "hang", 5: "diverge"}; HilError when malformed."""
    out: dict[int, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        trial, _, kind = part.strip().partition(":")
        if not trial.isdigit() or kind not in INJECTABLE:
            raise HilError(
                f"{INJECT_ENV}={text!r}: write TRIAL:KIND[,TRIAL:KIND...] with KIND one of "
                f"{', '.join(INJECTABLE)}"
            )
        out[int(trial)] = kind
    return out


def injected_fault(trial_id: int) -> str | None:
    return parse_injections(os.environ.get(INJECT_ENV)).get(trial_id)


# -- the evaluation ------------------------------------------------------------------------------


def evaluate_trial(task: TrialTask, report: Reporter) -> TrialOutcome:
    """Train the candidate of `task` and profile it on each board; never raises for a
    candidate's failure (see the module docstring)."""
    work = Path(task.work_dir)
    fault = injected_fault(task.trial_id)
    timings: dict[str, float] = {}
    report("training", "training")
    start = time.monotonic()
    try:
        result = _train(task, work, fault, report)
    except HilError as exc:  # bad dataset or unusable directory: every trial would fail
        return TrialOutcome(False, "error", str(exc), fatal=True)
    finally:
        timings["train"] = round(time.monotonic() - start, 3)
    artifacts = _artifacts(work)
    if not result.ok:
        return TrialOutcome(False, _training_kind(result.reason), result.reason,
                            record=result.record, artifacts=artifacts, timings=timings)
    outcome = TrialOutcome(True, record=result.record, artifacts=artifacts, timings=timings)
    too_large: list[str] = []
    for name in task.boards:
        stop = _profile_on(task, name, work / "model.tflite", fault, outcome, too_large, report)
        if stop:
            break
    if outcome.ok and too_large:
        outcome.ok = False
        outcome.failure_kind = "too-large"
        outcome.reason = "; ".join(too_large)
    outcome.artifacts = _artifacts(work)
    return outcome


def _train(task: TrialTask, work: Path, fault: str | None, report: Reporter) -> Any:
    from optimizer.factory.candidate import CandidateResult, run_candidate, run_isolated
    from optimizer.factory.config import CandidateConfig

    cfg = CandidateConfig(task.dataset, seed=task.seed, hparams=task.params)
    if fault in ("train-crash", "diverge"):
        work.mkdir(parents=True, exist_ok=True)
        outcome = run_isolated(os.abort if fault == "train-crash" else _diverge)
        reason = f"{outcome.reason} (injected by {INJECT_ENV})"
        record = {"status": "failed", "reason": reason, **cfg.to_dict()}
        return CandidateResult(False, record, reason=reason)

    def on_progress(done: int, total: int, label: str) -> None:
        report("training", f"{label} {done}/{total}")

    return run_candidate(
        cfg, work, timeout_s=task.train_timeout_s, threads=task.train_threads,
        on_progress=on_progress,
    )


def _diverge() -> None:
    from optimizer.factory.errors import CandidateFailed

    raise CandidateFailed("loss became NaN in train epoch 1; lower train.learning_rate")


def _training_kind(reason: str) -> str:
    if "NaN" in reason or "nan" in reason.split():
        return "diverged"
    if reason.startswith("timed out"):
        return "timeout"
    return "training"


def _profile_on(
    task: TrialTask,
    board_name: str,
    model: Path,
    fault: str | None,
    outcome: TrialOutcome,
    too_large: list[str],
    report: Reporter,
) -> bool:
    """Profile on one board, recording into `outcome`; True when the trial has failed for a
    reason that makes the other boards pointless (everything but not fitting)."""
    import hil
    from hil.boards import load_board
    from hil.errors import (
        BuildError,
        ConnectError,
        FlashError,
        ModelError,
        ModelTooLargeError,
        NoProbeError,
        ProbeCapabilityError,
        TargetError,
        TargetFault,
        TargetLockedError,
        TargetTimeout,
        ToolchainError,
        WrongTargetError,
    )

    board = load_board(board_name, boards_dir=Path(task.boards_dir) if task.boards_dir else None)
    steps: list[tuple[str, float]] = []

    def on_step(what: str) -> None:
        steps.append((what.split()[0], time.monotonic()))
        report("profiling", what)

    report("profiling", f"profiling on {board_name}")
    start = time.monotonic()
    kind = None
    try:
        if fault in ("build-fail", "hang", "fault"):
            raise _injected_error(fault, board_name)
        kwargs: dict[str, Any] = {"runs": task.profile_runs, "progress": False}
        if "on_step" in inspect.signature(hil.profile).parameters:
            kwargs["on_step"] = on_step
        rep = hil.profile(model, board, **kwargs)
    except ModelTooLargeError as exc:
        outcome.needs[board_name] = parse_needs(str(exc))
        too_large.append(f"{board_name}: {exc}")
        return False
    except BuildError as exc:
        kind, message = "build", str(exc)
    except FlashError as exc:  # a physical board's flash: never a build failure
        kind, message = "flash", str(exc)
    except ConnectError as exc:  # no probe, locked chip, wrong target, port busy ...
        kind, message = "connect", str(exc)
        # The bench's set-up, not this candidate: every trial would fail the same way.
        outcome.fatal = isinstance(exc, NoProbeError | ProbeCapabilityError |
                                   TargetLockedError | WrongTargetError)  # fmt: skip
    except TargetTimeout as exc:
        kind, message = "hang", str(exc)
    except TargetFault as exc:
        kind, message = "fault", str(exc)
    except TargetError as exc:
        kind, message = "target", str(exc)
    except ModelError as exc:
        kind, message = "model", str(exc)
    except ToolchainError as exc:  # a missing tool, not this candidate's fault
        kind, message = "error", str(exc)
        outcome.fatal = True
    finally:
        end = time.monotonic()
        outcome.timings[f"profile@{board_name}"] = round(end - start, 3)
        ends = [t for _, t in steps[1:]] + [end]
        for (step, t0), t1 in zip(steps, ends, strict=False):
            outcome.timings[f"{step}@{board_name}"] = round(t1 - t0, 3)
    if kind is not None:
        outcome.ok, outcome.failure_kind = False, kind
        outcome.reason = f"{board_name}: {message}"
        return True
    data = rep.to_dict()
    outcome.reports[board_name] = data
    path = model.parent / f"profile-{board_name}.json"
    with contextlib.suppress(OSError):
        path.write_text(rep.to_json() + "\n")
    # A failed check is a wrong program; a check no reference could do leaves the measured
    # figures valid (the report says why, in check_note).
    check = data.get("check", "passed" if rep.outputs_match else "failed")
    if fault == "mismatch" or check == "failed":
        outcome.ok, outcome.failure_kind = False, "mismatch"
        if fault == "mismatch":
            outcome.reason = (f"{board_name}: the device's outputs are treated as differing "
                              f"from the reference (injected by {INJECT_ENV})")
        else:
            outcome.reason = (
                f"{board_name}: the device's outputs differ from the reference by up to "
                f"{data.get('max_abs_diff')} LSB (more than 1): the generated model is wrong"
            )
        return True
    return False


def _injected_error(fault: str, board: str) -> HilError:
    from hil.errors import BuildError, TargetFault, TargetTimeout

    text = f"injected by {INJECT_ENV}"
    if fault == "build-fail":
        return BuildError(f"building the model project for board {board} failed ({text})")
    if fault == "hang":
        return TargetTimeout(f"the target {board} stopped answering ({text})")
    return TargetFault(f"the target {board} reported a HardFault ({text})")


_LINKER_NEED = re.compile(r"\b(flash|ram) needs ([\d,]+) bytes", re.IGNORECASE)
_WEIGHTS_NEED = re.compile(r"([\d,]+(?:\.\d+)?) KiB of weights")
_ARENA_NEED = re.compile(r"a ([\d,]+(?:\.\d+)?) KiB activation arena")


def parse_needs(message: str) -> dict[str, int]:
    """What a model that does not fit needs, from the bench's ModelTooLargeError: the
    linker's exact figure per region, else the weights / activation-arena lower bound."""
    needs: dict[str, int] = {}
    for region, nbytes in _LINKER_NEED.findall(message):
        needs["flash_bytes" if region.lower() == "flash" else "ram_bytes"] = int(
            nbytes.replace(",", ""))
    for pattern, key in ((_WEIGHTS_NEED, "flash_bytes"), (_ARENA_NEED, "ram_bytes")):
        m = pattern.search(message)
        if m and key not in needs:
            needs[key] = round(float(m.group(1).replace(",", "")) * 1024)
    return needs


def _artifacts(work: Path) -> dict[str, str]:
    names = ("model.tflite", "record.json", "train.log", "worker.log")
    found = {n: n for n in names if (work / n).is_file()}
    for p in sorted(work.glob("profile-*.json")):
        found[p.stem] = p.name
    return found


def clear_work_dir(work: Path) -> None:
    """A trial evaluated again starts from an empty directory (no stale model or record)."""
    if work.exists():
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)


def error_outcome(exc: BaseException) -> TrialOutcome:
    """An unexpected exception in the worker (a bug): the trial fails; the traceback goes to
    the worker's log (its stderr)."""
    traceback.print_exception(exc)
    return TrialOutcome(False, "error", f"{type(exc).__name__}: {exc} (traceback in worker.log)")


__all__ = [
    "FAILURE_KINDS",
    "INJECTABLE",
    "INJECT_ENV",
    "TrialOutcome",
    "TrialTask",
    "clear_work_dir",
    "evaluate_trial",
    "parse_injections",
    "parse_needs",
]
