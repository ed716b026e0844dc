"""What the bench needs from a target: start an image, hand out a serial URL, clean up.

A target is where an ELF runs: QEMU for the emulated boards, a physical board flashed with
pyOCD later. `session(elf)` is a context manager that yields a URL for `hil.link.DeviceLink`
(`socket://127.0.0.1:PORT` for QEMU, `/dev/ttyACM0` for a board) and stops the image on exit,
whatever happened inside.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path

from hil.boards import Board
from hil.errors import TargetError


class Target(ABC):
    """A place to run images built for one board."""

    def __init__(self, board: Board) -> None:
        self.board = board

    @abstractmethod
    def session(self, elf: Path) -> AbstractContextManager[str]:
        """Start `elf`, yield the serial URL of its host link, stop it on exit.

        Errors raised inside the `with` block by the link (timeouts, lost connection) come out
        explained by what the target saw, e.g. the emulator's exit code and messages.
        """

    @abstractmethod
    def check_tools(self) -> None:
        """Raise ToolchainError naming what to install if a program this target needs is
        missing. `hil.profile` calls it before building, so a missing emulator or flashing
        tool is reported at once, not after a build."""

    @abstractmethod
    def version(self) -> str:
        """What runs the images and its version (e.g. QEMU's `--version` line), for reports."""


def open_target(board: Board) -> Target:
    """The target for `board`, chosen by its board.toml `[run] kind`."""
    if board.run.kind == "qemu":
        from hil.targets.qemu import QemuTarget

        return QemuTarget(board)
    raise TargetError(
        f"board {board.name} runs with {board.run.kind!r}, which this version of the bench "
        f'cannot drive; use a QEMU board (kind = "qemu")'
    )
