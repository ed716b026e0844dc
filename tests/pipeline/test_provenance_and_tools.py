"""hil.profile's provenance fields, its up-front tool checks, link-time "does not fit" messages
and an unusable build cache, through the public API and the CLI (issue 7, items 4, 8, 11)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import hil
from hil import cli
from hil.boards import BOARDS_DIR, load_board
from hil.errors import ModelTooLargeError, ToolchainError
from hil.importer import load_tflite
from hil.report import SCHEMA_VERSION

MODEL = "autoencoder"  # FULLY_CONNECTED only: small, quick to build and run


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HIL_CACHE_DIR", str(cache))
    return cache


@pytest.mark.qemu
def test_a_report_says_what_was_measured_and_with_what(
    zoo_model: Callable[[str], Path], private_cache: Path
) -> None:
    path = zoo_model(MODEL)
    report = hil.profile(path, "qemu-m4", runs=2, progress=False)
    d = json.loads(report.to_json())
    assert next(iter(d)) == "schema_version" and d["schema_version"] == SCHEMA_VERSION == 2
    assert d["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert re.fullmatch(rf"{re.escape(hil.__version__)}( \(git [^)]+\))?", d["bench_version"])
    gcc = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True)
    assert d["compiler_version"] == gcc.stdout.splitlines()[0].strip()
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True)
    assert d["target_version"] == qemu.stdout.splitlines()[0].strip()
    assert d["target_version"].startswith("QEMU emulator version")
    flags = d["build_flags"]
    assert flags[: len(load_board("qemu-m4").cpu_flags)] == list(load_board("qemu-m4").cpu_flags)
    assert "-O2" in flags and not any(f.startswith(("-I", "-o")) for f in flags)
    assert d["cached"] is False  # this process built it

    # Another process profiling the same model reuses the image, and says so.
    proc = subprocess.run(
        [sys.executable, "-m", "hil.cli", "profile", str(path), "--runs", "2", "--json", "-",
         "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == cli.EXIT_OK, proc.stderr
    again = json.loads(proc.stdout)
    assert again["cached"] is True
    for key in ("model_sha256", "compiler_version", "build_flags", "target_version"):
        assert again[key] == d[key]
    assert again["latency_counts"] == d["latency_counts"]


def test_a_missing_qemu_is_reported_before_any_build(
    zoo_model: Callable[[str], Path], private_cache: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    path = zoo_model(MODEL)
    bin_dir = tmp_path / "bin"  # everything the build needs, but no QEMU
    bin_dir.mkdir()
    for tool in ("cmake", "ninja", "make", "arm-none-eabi-gcc"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool) or "")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolchainError) as info:
        hil.profile(path, "qemu-m0", progress=False)
    message = str(info.value)
    assert "qemu-system-arm not found" in message and "qemu-m0" in message
    assert "apt-get install qemu-system-arm" in message and "scripts/setup.sh" in message
    assert not (private_cache / "build").exists()  # nothing was built first


def test_a_model_whose_image_overflows_flash_at_link_time_is_named(
    zoo_model: Callable[[str], Path], private_cache: Path, tmp_path: Path
) -> None:
    """The weights fit (so the up-front check passes) but weights + runtime do not: the linker
    finds it, and the message must name the model and flash, not a cache path or RAM."""
    path = zoo_model(MODEL)
    graph = load_tflite(path)
    weights = sum(t.nbytes for t in graph.tensors if t.is_constant)
    flash = weights + 1024
    boards = tmp_path / "boards"
    board_dir = boards / "small-flash"
    shutil.copytree(BOARDS_DIR / "qemu-m4", board_dir)
    toml = (board_dir / "board.toml").read_text()
    toml = toml.replace('name = "qemu-m4"', 'name = "small-flash"')
    toml = re.sub(r"flash_bytes = [\d_]+", f"flash_bytes = {flash}", toml)
    (board_dir / "board.toml").write_text(toml)
    ld = (board_dir / "link.ld").read_text()
    (board_dir / "link.ld").write_text(re.sub(r"LENGTH = 960K", f"LENGTH = {flash}", ld))
    board = load_board("small-flash", boards_dir=boards)

    with pytest.raises(ModelTooLargeError) as info:
        hil.profile(path, board, progress=False)
    message = str(info.value)
    assert f"model {graph.name!r} does not fit small-flash" in message
    assert "flash needs " in message and f"small-flash has {flash:,}" in message
    assert "RAM" not in message and str(private_cache) not in message


def test_a_cache_dir_that_is_a_file_is_one_line_from_the_cli(
    zoo_model: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    a_file = tmp_path / "cache-file"
    a_file.write_text("")
    monkeypatch.setenv("HIL_CACHE_DIR", str(a_file))
    code = cli.main(["profile", str(zoo_model(MODEL)), "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert str(a_file) in err and "is a file" in err
    assert "set HIL_CACHE_DIR to a writable directory" in err


def test_a_full_cache_dir_is_one_line_from_the_cli(
    zoo_model: Callable[[str], Path], tmp_path: Path
) -> None:
    """A really full filesystem: a tmpfs filled to the last block, mounted in a private mount
    namespace (`unshare -rm`: no root needed where user namespaces are allowed)."""
    model = zoo_model(MODEL)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=256k tmpfs {mnt} || exit 99\n"
        f"mkdir {mnt}/cache && dd if=/dev/zero of={mnt}/fill bs=4k 2>/dev/null\n"
        f'HIL_CACHE_DIR={mnt}/cache "$@"\n'
    )
    try:
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "hil.cli",
             "profile", str(model), "--quiet"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""},
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed: cannot mount a small filesystem")
    if proc.returncode == 99 or "unshare failed" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {proc.stderr.strip()}")
    assert proc.returncode == cli.EXIT_ERROR, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"{mnt}/cache" in lines[0] and "no space left" in lines[0]
