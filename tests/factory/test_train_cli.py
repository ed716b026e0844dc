"""`hil train` through the `hil` command line: every bad input is a one-line error, never a
traceback (no training runs here: each case is refused before any work)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = '[data]\ndataset = "digits"\n[train]\nepochs = 1\n'


def run_train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of `hil train ARGV`; fails the test on any exception."""
    code = main(["train", *argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def assert_one_line_error(err: str, *phrases: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def config(tmp_path: Path, text: str = GOOD) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"\x00asm\x01\x00\x00\x00\x01\x07\x01`\x02\x7f\x7f\x01\x7f", "binary file"),
        (bytes(range(256)), "not UTF-8"),
        ('[data]\ndataset = "d\u00e9"\n'.encode("latin-1"), "not UTF-8"),
    ],
    ids=["binary", "random-bytes", "latin-1"],
)
def test_a_config_that_is_not_text_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, phrase: str
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    code, err = run_train(capsys, str(path), "--out", str(tmp_path / "run"))
    assert code == 1
    assert_one_line_error(err, phrase, "give a TOML config file")
    assert not (tmp_path / "run").exists()


def test_a_config_that_is_a_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_train(capsys, str(tmp_path), "--out", str(tmp_path / "run"))
    assert code == 1
    assert_one_line_error(err, "is a directory", "give a TOML config file")


@pytest.mark.parametrize(
    ("dataset", "phrase"),
    [
        ("a:b:c", "module:function"),
        (":load", "module:function"),
        ("digits:", "module:function"),
        ("my module:load", "module:function"),
        ("..rel:load", "module:function"),
        ("C:\\\\data\\\\x.npz", "module:function"),
        ("no_such_module_xyz:load", "cannot import load"),
        ("os:path", "not a function"),
        ("json:loads", "its loader failed: TypeError"),
        ("os:getcwd", "it must return a tuple (X, y)"),
    ],
)
def test_a_bad_loader_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str, phrase: str
) -> None:
    cfg = config(tmp_path, f'[data]\ndataset = "{dataset}"\n')
    code, err = run_train(capsys, cfg, "--out", str(tmp_path / "run"))
    assert code == 1
    assert_one_line_error(err, phrase)
    assert not (tmp_path / "run").exists()


def test_out_that_is_an_existing_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "taken"
    out.write_text("keep me")
    code, err = run_train(capsys, config(tmp_path), "--out", str(out))
    assert code == 1
    assert_one_line_error(err, "is an existing file", "choose an output directory")
    assert out.read_text() == "keep me"


def test_out_under_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    code, err = run_train(capsys, config(tmp_path), "--out", str(tmp_path / "file" / "run"))
    assert code == 1
    assert_one_line_error(err, "cannot write to output directory", "is a file")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs at /sys")
@pytest.mark.parametrize("out", ["/sys/hil-train-test", "/sys"])
def test_out_on_a_filesystem_that_takes_no_files_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out: str
) -> None:
    # sysfs refuses new files and directories even to root (chmod would not stop root).
    code, err = run_train(capsys, config(tmp_path), "--out", out)
    assert code == 1
    assert_one_line_error(err, f"cannot write to output directory {out}",
                          "choose an output directory")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--threads", "0"), ("--threads", "-2"), ("--threads", "two"), ("--timeout", "-5"),
     ("--timeout", "0"), ("--timeout", "nan"), ("--timeout", "soon")],
)
def test_bad_threads_and_timeout_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", config(tmp_path), "--out", str(tmp_path / "run"), f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_console_script_prints_one_line(tmp_path: Path) -> None:
    hil = Path(sys.executable).with_name("hil")
    if not hil.exists():
        pytest.skip(f"no console script next to {sys.executable} (project not installed)")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[data]")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(hil), "train", str(bad), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "not UTF-8")
