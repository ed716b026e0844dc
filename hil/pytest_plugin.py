"""pytest plugin of tinyml-hil (entry point `pytest11`, name `hil`): model guards as pytest tests.

    def test_kws(hil):
        r = hil.profile("kws.tflite")
        assert r.latency_ms < 40

- `--hil-board NAME` (repeatable) runs every test that uses the `hil` fixture once per board
  (ids `test_kws[qemu-m4]`, `test_kws[qemu-m0]`); without it they run on qemu-m4.
  `--hil-runs N` sets the measured runs per profile (default 3: QEMU counts repeat exactly).
- `hil.profile(model, **kwargs)` is `hil.profile` on the test's board (no progress output);
  a relative model path is looked up from the working directory, then next to the test file.
  Each call records the figures as the test's JUnit properties, as `record_property` does
  (board, model, timing_source, latency_counts, latency_ms, ram_bytes, flash_bytes,
  max_abs_diff, ...), so `--junitxml` files carry them.
- `@pytest.mark.hil_board_required` skips a test, saying why, unless its board is a physical
  board with a debug probe attached (QEMU stand-ins are not).
- At the session's end, QEMU processes that tests started and left running are stopped and
  named in the summary.

It costs nothing where it is not used: importing it loads only pytest and the light `hil`
package, and its hooks return at once for tests without the fixture or the marker. Disable it
with `-p no:hil`.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hil.report import Report

DEFAULT_BOARD = "qemu-m4"
DEFAULT_RUNS = 3
MARKER = "hil_board_required"
#: Report fields recorded as JUnit properties by every `hil.profile` call, in this order.
RECORDED = (
    "board",
    "model",
    "model_sha256",
    "timing_source",
    "latency_counts",
    "latency_ms",
    "ram_bytes",
    "flash_bytes",
    "stack_bytes",
    "max_abs_diff",
    "outputs_exact_rate",
    "reference",
    "check",
)
_USED = pytest.StashKey[bool]()
_STOPPED = pytest.StashKey[list[int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "tinyml-hil: profile models on Cortex-M boards or QEMU")
    group.addoption(
        "--hil-board",
        action="append",
        default=[],
        metavar="NAME",
        help=f"board for tests using the `hil` fixture; repeat to run them on several boards "
        f"(default {DEFAULT_BOARD}; `hil boards` lists them)",
    )
    group.addoption(
        "--hil-runs",
        type=int,
        default=DEFAULT_RUNS,
        metavar="N",
        help=f"measured runs per profile in `hil` tests (default {DEFAULT_RUNS})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test needs a physical board with a debug probe attached (pass one with "
        "--hil-board); skipped, with the reason, on QEMU stand-ins or when none is attached",
    )
    boards = config.getoption("hil_board", default=None) or []
    if boards:
        from hil.boards import load_board
        from hil.errors import BoardError

        for name in boards:
            try:
                load_board(name)
            except BoardError as exc:
                raise pytest.UsageError(f"--hil-board {name}: {exc}") from exc
        config.stash[_USED] = True
    if config.getoption("hil_runs", default=DEFAULT_RUNS) < 1:
        raise pytest.UsageError("--hil-runs must be at least 1")


def _boards(config: pytest.Config) -> list[str]:
    return list(dict.fromkeys(config.getoption("hil_board", default=None) or [DEFAULT_BOARD]))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hil_board" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        names = names.split(",") if isinstance(names, str) else list(names)
        if "hil_board" in (n.strip() for n in names):
            return  # the test chose its boards itself
    boards = _boards(metafunc.config)
    metafunc.parametrize("hil_board", boards, ids=boards, indirect=True)


@pytest.fixture
def hil_board(request: pytest.FixtureRequest) -> str:
    """Name of the board this test runs on (one of --hil-board, or qemu-m4)."""
    return getattr(request, "param", None) or _boards(request.config)[0]


class HilBench:
    """The `hil` fixture: `hil.profile` bound to the test's board, recording its figures."""

    def __init__(self, board: str, runs: int, item: pytest.Item) -> None:
        self.board = board
        self.runs = runs
        self._item = item

    def profile(self, model: str | Path | bytes, **kwargs: Any) -> Report:
        """`hil.profile(model, board=<this test's board>, runs=--hil-runs, **kwargs)`."""
        import hil

        kwargs.setdefault("runs", self.runs)
        kwargs.setdefault("progress", False)
        board = kwargs.pop("board", self.board)
        report = hil.profile(self._find(model), board, **kwargs)
        figures = report.to_dict()
        for key in RECORDED:
            if key in figures:
                # What record_property does, without its warning under junit_family=xunit2.
                self._item.user_properties.append((key, figures[key]))
        return report

    def _find(self, model: str | Path | bytes) -> str | Path | bytes:
        if isinstance(model, bytes | bytearray):
            return model
        path = Path(model)
        beside_test = self._item.path.parent / path
        if not path.is_absolute() and not path.exists() and beside_test.exists():
            return beside_test
        return path

    def __repr__(self) -> str:
        return f"HilBench(board={self.board!r}, runs={self.runs})"


@pytest.fixture
def hil(hil_board: str, request: pytest.FixtureRequest) -> HilBench:
    """Profile models on the board chosen with --hil-board: `hil.profile("model.tflite")`."""
    request.config.stash[_USED] = True
    return HilBench(hil_board, request.config.getoption("hil_runs"), request.node)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(MARKER) is None:
        return
    callspec = getattr(item, "callspec", None)
    board = callspec.params.get("hil_board") if callspec is not None else None
    boards = item.config.getoption("hil_board", default=None) or []
    board = board or (boards[0] if boards else None)
    if board is None:
        pytest.skip(f"{MARKER}: no board given; pass --hil-board NAME of an attached board")
    reason = _not_attached(board)
    if reason is not None:
        pytest.skip(f"{MARKER}: {reason}")


def _not_attached(name: str) -> str | None:
    """Why `name` is not a physical board that is attached now (None when it is)."""
    from hil.boards import load_board

    board = load_board(name)
    if board.run.kind == "qemu":
        stands_in = f" standing in for {board.stands_in_for}" if board.stands_in_for else ""
        return f"{name} is emulated (QEMU{stands_in}); this test needs the physical board"
    try:
        from pyocd.core.helpers import ConnectHelper
    except ImportError:
        return f"{name} is flashed with pyOCD, which is not installed (pip install pyocd)"
    try:
        probes = ConnectHelper.get_all_connected_probes(blocking=False)
    except Exception as exc:  # USB permission problems and the like
        return f"cannot list debug probes for {name}: {exc}"
    if not probes:
        return f"no debug probe is attached for {name} (`pyocd list` shows none)"
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not config.stash.get(_USED, False):
        return
    import gc

    gc.collect()  # abandoned sessions stop their QEMU when collected
    stopped = []
    for pid in _qemu_children():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            stopped.append(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    config.stash[_STOPPED] = stopped


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    stopped = config.stash.get(_STOPPED, [])
    if stopped:
        terminalreporter.write_line(
            f"hil: stopped {len(stopped)} QEMU process(es) the tests left running "
            f"(pid {', '.join(map(str, stopped))})",
            yellow=True,
        )


def _qemu_children() -> Iterator[int]:
    """Running qemu-system-* processes whose parent is this process (Linux /proc)."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:  # not Linux: QEMU sessions stop themselves at interpreter exit
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        state, ppid = stat[stat.rfind(")") + 2 :].split()[:2]
        if int(ppid) == me and comm.startswith("qemu-system") and state != "Z":
            yield int(entry)
