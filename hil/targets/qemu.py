"""Run an image under qemu-system-arm, deterministic and always cleaned up.

QEMU runs with `-icount shift=0,align=off,sleep=off` (one instruction is one nanosecond of
virtual time, so timings repeat exactly), semihosting (the firmware's exit code becomes QEMU's)
and the board's UART on a TCP server socket that waits for the host to connect before the CPU
starts. QEMU is started in its own process group, which is killed on leaving the session, on
an exception or Ctrl-C, when the session object is garbage-collected, at interpreter exit, and
(Linux) when the Python process dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO

from hil.boards import Board
from hil.errors import TargetError, TargetFault
from hil.targets.base import Field, Target
from hil.tools import require, version_line

QEMU = "qemu-system-arm"
#: Exit code of the firmware after it reported a fault (HIL_EXIT_FAULT in hil_protocol.h).
EXIT_FAULT = 3
_LISTENING = "waiting for connection"
_START_TIMEOUT_S = 15.0
_PORT_ATTEMPTS = 5
_FP_DUMP = re.compile(r"^(s\d\d=|FPSCR)")


def qemu_command(board: Board, elf: Path, port: int) -> list[str]:
    """The qemu-system-arm command line for `elf` on `board`, serial on 127.0.0.1:`port`."""
    if board.run.machine is None:
        raise TargetError(f"board {board.name} has no [run] machine for QEMU")
    return [
        QEMU,
        "-M", board.run.machine,
        "-display", "none",
        "-monitor", "none",
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        "-semihosting-config", "enable=on,target=native",
        "-icount", "shift=0,align=off,sleep=off",
        "-kernel", str(elf),
        *board.run.extra_args,
    ]  # fmt: skip


class QemuTarget(Target):
    """Runs images of a `[run] kind = "qemu"` board."""

    def session(self, elf: Path) -> QemuSession:
        return QemuSession(self.board, Path(elf))

    def check_tools(self) -> None:
        _qemu_path(self.board)

    def version(self) -> str:
        """QEMU's version line, e.g. 'QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7)'."""
        return version_line(_qemu_path(self.board))


def _qemu_path(board: Board) -> str:
    return require([QEMU], f"to run images for {board.name}, a QEMU board")[QEMU]


class QemuSession:
    """One QEMU process for one image; use as a context manager yielding the serial URL."""

    def __init__(self, board: Board, elf: Path) -> None:
        self.board = board
        self.elf = elf
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # anonymous file: nothing to delete, ever
        self._finalizer: weakref.finalize | None = None
        self._final_output = ""

    @property
    def pid(self) -> int | None:
        """QEMU's process id (also its process group id) once started."""
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """QEMU's exit status once it has stopped (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    @property
    def output(self) -> str:
        """What QEMU printed (stdout and stderr)."""
        if self._log is not None and not self._log.closed:
            fd = self._log.fileno()
            # pread: the file offset is shared with QEMU's writes and must not move.
            return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
        return self._final_output

    def __enter__(self) -> str:
        _qemu_path(self.board)
        if not self.elf.is_file():
            raise TargetError(f"image {self.elf} does not exist; build it first")
        with open(self.elf, "rb") as f:
            if f.read(4) != b"\x7fELF":
                # QEMU would load it as a raw image and the link would only time out.
                raise TargetError(f"{self.elf} is not an ELF file; pass the image hil.build made")
        try:
            for _ in range(_PORT_ATTEMPTS):
                port = _free_port()
                self._start(port)
                if self._wait_listening():
                    self.url = f"socket://127.0.0.1:{port}"
                    return self.url
                if "Address already in use" not in self.output:
                    break
                self.stop()
            raise TargetError(
                f"QEMU did not start {self.elf.name} for {self.board.name} "
                f"(exit code {self.returncode}):\n{_tail(self.output)}"
            )
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if isinstance(exc, TargetError) and not isinstance(exc, TargetFault):
                explained = self._explain(exc)
                if explained is not None:
                    raise explained from exc
        finally:
            self.stop()

    def stop(self) -> None:
        """Kill QEMU's process group, wait for it and close its log (keeping the text for
        error reports); safe to call more than once."""
        if self._proc is not None and self._proc.poll() is None:
            _kill_group(self._proc)
        self._final_output = self.output
        if self._finalizer is not None:
            self._finalizer()

    def _start(self, port: int) -> None:
        # Lives as long as QEMU does; _clean_up closes it.
        self._log = tempfile.TemporaryFile(prefix="hil-qemu-")  # noqa: SIM115
        self._proc = subprocess.Popen(
            qemu_command(self.board, self.elf, port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._finalizer = weakref.finalize(self, _clean_up, self._proc, self._log)

    def _wait_listening(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if _LISTENING in self.output:
                return True
            if self._proc.poll() is not None:
                return False
            time.sleep(0.01)
        return False

    def _explain(self, exc: TargetError) -> TargetError | None:
        """Why the link failed, if QEMU has stopped: its exit code and messages."""
        assert self._proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=0.5)
        code = self._proc.poll()
        if code is None:
            return None
        text = _tail(self.output)
        if code in (134, -signal.SIGABRT) or "Lockup" in text:
            return TargetFault(
                f"QEMU stopped on a CPU lockup running {self.elf.name} on {self.board.name} "
                f"(a fault while handling a fault, e.g. a stack overflow or a bad vector "
                f"table); exit code {code}:\n{text}"
            )
        if code == EXIT_FAULT:
            return TargetFault(
                f"the firmware on {self.board.name} reported a fault and stopped (exit code "
                f"{code}), but the fault report did not reach the host ({exc})"
            )
        return TargetError(
            f"QEMU exited with code {code} while running {self.elf.name} on "
            f"{self.board.name} ({exc}):\n{text}"
        )

    def __repr__(self) -> str:
        return f"QemuSession({self.board.name!r}, {self.elf}, url={self.url!r})"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_up(proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Also runs when a session is garbage-collected or the interpreter exits."""
    _kill_group(proc)
    log.close()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the other clean-up paths still apply
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: have Linux kill QEMU if the Python process dies (SIGKILL
    included, which no Python clean-up can catch). Linux fires it when the thread that started
    QEMU ends, so keep a session within one thread."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(text: str, lines: int = 15) -> str:
    """QEMU's last messages, without the FPU register dump and the listening notice."""
    kept = [
        line
        for line in text.splitlines()
        if line.strip() and not _FP_DUMP.match(line) and _LISTENING not in line
    ][-lines:]
    return "\n".join(f"  {line}" for line in kept) or "  (no output)"


def _strings(value: tuple[object, ...]) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "must be a list of strings"


#: The [run] table of a QEMU board (validated by hil.targets.base; unknown keys are errors).
RUN_FIELDS = {
    "machine": Field(str, help="QEMU machine (-M)"),
    "extra_args": Field(list, (), check=_strings, help="more qemu-system-arm arguments"),
}
#: The Target class of this kind (hil.targets.base.KINDS).
TARGET = QemuTarget

__all__ = ["EXIT_FAULT", "RUN_FIELDS", "TARGET", "QemuSession", "QemuTarget", "qemu_command"]
