"""Run mutated models through the bench's public interface and sort what happened.

Shared by the fuzzing test (tests/fuzz/test_model_fuzz.py, bounded) and the fuzzing benchmark
(benchmarks/fuzz_models.py, thousands of mutants). Two levels:

- `import_outcome`: `hil.importer.load_tflite_bytes` in this process (cheap: thousands per
  minute). A HilError is a clean refusal; any other exception is a traceback a user would see.
- `profile_outcome`: `hil profile` in a child process with a timeout (seconds per mutant),
  checking what a user or CI job sees: exit code, a traceback or a signal, a hang, and any QEMU
  process of this run left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hil.errors import HilError
from hil.importer import load_tflite_bytes

REPO = Path(__file__).resolve().parents[2]
BUNDLED_MODELS = REPO / "examples" / "models"
SHARED_MODELS = REPO.parent / "shared" / "models"
HIL = Path(sys.executable).with_name("hil")
TRACEBACK = "Traceback (most recent call last)"

#: Outcomes that are acceptable: the model was profiled (a report), or refused with a message.
CLEAN = frozenset({"accepted", "refused", "profiled", "profiled-unchecked", "over-budget"})


@dataclass(frozen=True)
class Outcome:
    kind: str  # accepted | refused | profiled | profiled-unchecked | outputs-differ | ...
    detail: str  # error class, exit code, or the message's first line

    @property
    def clean(self) -> bool:
        return self.kind in CLEAN

    def row(self) -> str:
        """The kind as a table row key: refusals by what refused them."""
        return f"{self.kind} ({self.detail})" if self.kind == "refused" else self.kind


def model_paths() -> tuple[list[Path], list[Path]]:
    """The bundled example models and the shared real models (the latter may be absent)."""
    return sorted(BUNDLED_MODELS.glob("*.tflite")), sorted(SHARED_MODELS.glob("*.tflite"))


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _Hang in this (main) thread after `seconds`: an import must never loop forever.

    When a timer is already running (pytest-timeout's), it is left alone and guards instead.
    """
    if signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def import_outcome(data: bytes, timeout_s: float = 10.0) -> Outcome:
    """Import `data` in this process: accepted, refused (HilError class), traceback or hang."""
    started = time.monotonic()
    try:
        with _deadline(timeout_s):
            load_tflite_bytes(data, "mutant")
        if time.monotonic() - started > timeout_s:
            raise _Hang
    except _Hang:
        return Outcome("hang", f"import took over {timeout_s:g} s")
    except HilError as exc:
        if not str(exc).strip():
            return Outcome("empty-message", type(exc).__name__)
        return Outcome("refused", type(exc).__name__)
    except Exception as exc:
        return Outcome("traceback", f"{type(exc).__name__}: {exc}"[:300])
    return Outcome("accepted", "")


def qemu_processes(marker: str) -> list[int]:
    """Pids of QEMU processes whose command line contains `marker` (e.g. a cache dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmdline and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def _stage(message: str) -> str:
    """Which part of the bench refused the model, from the CLI's error message."""
    rules = [
        ("reference", r"reference|LiteRT|TFLM|interpreter"),
        ("too-large", r"does not fit|too large|overflow"),
        ("build", r"build|compil|link"),
        ("target", r"QEMU|target|firmware|fault|device"),
    ]
    for name, pattern in rules:
        if re.search(rf"\b({pattern})", message, re.IGNORECASE):
            return name
    return "model"


def profile_outcome(path: Path, cache_dir: Path, timeout_s: float = 240.0,
                    board: str = "qemu-m4") -> Outcome:
    """`hil profile PATH` in a child (own session, HIL_CACHE_DIR=cache_dir), one run, JSON on
    stdout; sorted into profiled, refused (by stage), outputs-differ, traceback, signal, hang,
    bad-exit or leftover-qemu. Use a cache directory only fuzzing uses: a QEMU left behind is
    found by that path in its command line."""
    env = {**os.environ, "HIL_CACHE_DIR": str(cache_dir)}
    cmd = [str(HIL), "profile", str(path), "--board", board, "--runs", "1", "--warmup", "0",
           "--quiet", "--json", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        outcome = Outcome("hang", f"no exit within {timeout_s:g} s")
    else:
        outcome = _classify(proc.returncode, out, err)
    left = _leftover_qemu(str(cache_dir))
    if left:
        return Outcome("leftover-qemu", f"QEMU pids {left} still running after: {outcome}")
    return outcome


def _parent_command(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        return (Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace") if ppid > 1 else "")
    except (OSError, ValueError, IndexError):
        return ""


def _leftover_qemu(marker: str) -> list[int]:
    """QEMU of this run still alive after `hil` exited (waited for briefly; then killed).

    A QEMU whose parent is a running `hil` belongs to a concurrent run sharing the cache (e.g.
    another session's fuzzing test); one whose `hil` is gone was left behind.
    """
    deadline = time.monotonic() + 2.0
    while True:
        pids = [p for p in qemu_processes(marker) if "bin/hil " not in _parent_command(p)]
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in pids:  # left behind by the `hil` child of this run
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _classify(rc: int, out: str, err: str) -> Outcome:
    errors = [line[len("error: "):] for line in err.splitlines() if line.startswith("error: ")]
    if rc < 0 or rc >= 128:
        name = signal.Signals(-rc).name if rc < 0 else f"exit {rc}"
        return Outcome("signal", f"{name}: {err.strip()[-200:]}")
    if TRACEBACK in err:
        return Outcome("traceback", err.strip().splitlines()[-1][:300])
    if rc in (0, 3, 4, 6):
        try:
            json.loads(out)
        except ValueError:
            return Outcome("bad-exit", f"exit {rc} without a JSON report: {err.strip()[-200:]}")
        kind = {0: "profiled", 3: "over-budget", 4: "outputs-differ", 6: "profiled-unchecked"}
        return Outcome(kind[rc], err.strip().splitlines()[-1][:300] if err.strip() else "")
    if rc in (1, 5) and errors and errors[0].strip():
        return Outcome("refused", _stage(errors[0]))
    return Outcome("bad-exit", f"exit {rc}: {err.strip()[-300:]}")
