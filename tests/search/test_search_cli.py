"""`hil search` command line: usage mistakes are one-line errors; the local path never imports
Ray."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hil.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["search"], "usage: hil search CONFIG.toml --out RUN (a new search) or"),
        (["search", "c.toml"], "usage: hil search CONFIG.toml --out RUN"),
        (["search", "c.toml", "--out", "r", "--resume", "r"], "give either CONFIG --out RUN"),
        (["search", "--resume", "r", "--seed", "3"], "--seed and --algorithm cannot change"),
        (["search", "--resume", "/nonexistent/run"], "is not a `hil search` run directory"),
        (["search", "/nonexistent/c.toml", "--out", "r"], "config file /nonexistent/c.toml"),
    ],
)
def test_usage_mistakes_are_one_line_errors(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_bad_budget_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "c.toml", "--out", "r", "--budget", "0"])
    assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_the_local_path_never_imports_ray() -> None:
    code = (
        "import sys\n"
        "from optimizer.search import cli, loop, executor, evaluate, store\n"
        "executor.make_executor(2).close()\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
