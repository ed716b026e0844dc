"""The pytest plugin, as a user runs it: pytest in a subprocess on a small test file.

Checks the outcomes per board (--hil-board repeated), the figures recorded as JUnit properties,
the skip of `hil_board_required` tests on QEMU, the stop of a leaked QEMU at the session's end,
and that the plugin stays out of sessions that do not use it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from check_support import DSCNN

_TOOLS = ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")

USER_TESTS = f"""
import os
import subprocess
from pathlib import Path

import pytest

MODEL = {str(DSCNN)!r}


def test_kws(hil):
    r = hil.profile(MODEL)
    assert r.latency_ms < 40


def test_always_over_budget(hil):
    r = hil.profile(MODEL)
    assert r.ram_bytes < 1, "RAM budget of 1 byte"


@pytest.mark.hil_board_required
def test_on_the_real_board(hil):
    raise AssertionError("must be skipped on a QEMU stand-in")


def test_plain():
    pass


def test_leaks_a_qemu():
    proc = subprocess.Popen(
        ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
         "-serial", "none", "-S"],
        start_new_session=True,
    )
    Path(os.environ["LEAK_PID_FILE"]).write_text(str(proc.pid))
"""


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEAK_PID_FILE": str(tmp_path / "leak.pid")}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_the_plugin_is_installed_as_a_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("hil") == "hil.pytest_plugin", (
        "the pytest11 entry point is missing: re-install the project "
        "(pip install --no-deps --no-build-isolation -e .)"
    )


@pytest.mark.qemu
def test_user_tests_run_per_board_and_record_figures(tmp_path: Path) -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")
    (tmp_path / "test_models.py").write_text(USER_TESTS)
    junit = tmp_path / "junit.xml"
    proc = pytest_run(
        tmp_path,
        "--hil-board",
        "qemu-m4",
        "--hil-board",
        "qemu-m0",
        f"--junitxml={junit}",
        "test_models.py",
    )
    output = proc.stdout + proc.stderr
    leaked = int((tmp_path / "leak.pid").read_text())
    if alive(leaked):  # never leave it behind, whatever the verdict
        os.kill(leaked, signal.SIGKILL)
        pytest.fail(f"the leaked QEMU (pid {leaked}) survived the session:\n{output}")
    assert f"hil: stopped 1 QEMU process(es) the tests left running (pid {leaked})" in output
    assert proc.returncode == 1, output  # some tests fail
    assert "incompatible with junit_family" not in output

    root = ET.parse(junit).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {
        *(
            f"{t}[{b}]"
            for t in ("test_kws", "test_always_over_budget", "test_on_the_real_board")
            for b in ("qemu-m4", "qemu-m0")
        ),
        "test_plain",
        "test_leaks_a_qemu",
    }

    def outcome(name: str) -> str:
        case = cases[name]
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                return tag
        return "passed"

    def properties(name: str) -> dict[str, str]:
        return {p.get("name", ""): p.get("value", "") for p in cases[name].iter("property")}

    for board in ("qemu-m4", "qemu-m0"):
        kws = properties(f"test_kws[{board}]")
        assert kws["board"] == board and kws["model"] == "digits-dscnn"
        assert kws["timing_source"] == "qemu-icount" and int(kws["latency_counts"]) > 0
        assert int(kws["ram_bytes"]) > 0 and int(kws["flash_bytes"]) > 0
        assert float(kws["max_abs_diff"]) <= 1
        expected = "passed" if float(kws["latency_ms"]) < 40 else "failure"
        assert outcome(f"test_kws[{board}]") == expected
        over = cases[f"test_always_over_budget[{board}]"].find("failure")
        assert over is not None and "RAM budget of 1 byte" in over.get("message", "")
        assert properties(f"test_always_over_budget[{board}]")["board"] == board
        skipped = cases[f"test_on_the_real_board[{board}]"].find("skipped")
        assert skipped is not None
        assert f"{board} is emulated (QEMU standing in for" in skipped.get("message", "")
    # Latency differs between the boards, so the figures are each board's own.
    assert (
        properties("test_kws[qemu-m4]")["latency_counts"]
        != properties("test_kws[qemu-m0]")["latency_counts"]
    )
    assert outcome("test_plain") == "passed" and properties("test_plain") == {}


def test_the_plugin_stays_out_of_sessions_that_do_not_use_it(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_nothing_of_the_bench_loaded(request):
                assert "hil_board" not in request.fixturenames
                loaded = [m for m in ("hil.boards", "hil.build", "hil.targets") if m in sys.modules]
                assert loaded == []
            """
        )
    )
    proc = pytest_run(tmp_path, "-q", "test_plain.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout and "hil:" not in proc.stdout


def test_an_unknown_board_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(hil):\n    pass\n")
    proc = pytest_run(tmp_path, "--hil-board", "qemu-m9", "test_x.py")
    assert proc.returncode == 4  # pytest's usage error
    assert "--hil-board qemu-m9: unknown board 'qemu-m9'; known boards:" in proc.stderr
