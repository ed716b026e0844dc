"""Building model projects: caching, and the messages a user sees when a build cannot work."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from platform_support import FIXTURES, model_project

from hil.boards import load_board
from hil.build import build
from hil.errors import BuildError, ModelTooLargeError, ToolchainError

SMALL = "#define FLASH_FILL_BYTES 16\n#define RAM_FILL_BYTES 16\n"


def test_unchanged_model_is_a_cache_hit_and_a_changed_one_rebuilds(
    tmp_path: Path, cache_env: Path
) -> None:
    board = load_board("qemu-m4")
    # A unique comment makes the source new to the (session-wide) cache.
    project = model_project(tmp_path, "echo_model", **{"nonce.h": f"/* {uuid.uuid4()} */\n"})
    first = build(project, board)
    assert not first.cached and first.elf.is_file() and first.map_file.is_file()
    assert first.elf.is_relative_to(cache_env)
    assert "hil_model_layers" in first.map_file.read_text()
    built_at = first.elf.stat().st_mtime_ns

    again = build(project, board)
    assert again.cached and again.elf == first.elf and again.seconds < 0.5
    assert again.elf.stat().st_mtime_ns == built_at  # nothing was compiled or linked

    (project / "nonce.h").write_text("/* changed */\n")
    changed = build(project, board)
    assert not changed.cached and changed.elf != first.elf


def test_compiler_errors_name_project_board_and_the_offending_line(
    tmp_path: Path, cache_env: Path
) -> None:
    sizes = SMALL + "#define BROKEN_SYNTAX\n"
    project = model_project(tmp_path, "sized_model", **{"sizes.h": sizes})
    with pytest.raises(BuildError) as info:
        build(project, load_board("qemu-m0"))
    message = str(info.value)
    assert str(project) in message and "qemu-m0" in message
    line = (project / "model.c").read_text().splitlines().index("int broken = ;") + 1
    assert f"model.c:{line}:" in message and "error: expected expression" in message
    assert "-- Configuring" not in message  # the compiler's lines, not the whole log


@pytest.mark.parametrize(
    ("sizes", "region", "have"),
    [
        ("#define FLASH_FILL_BYTES (1536u * 1024u)\n#define RAM_FILL_BYTES 16\n", "FLASH", 1 << 20),
        ("#define FLASH_FILL_BYTES 16\n#define RAM_FILL_BYTES (300u * 1024u)\n", "RAM", 256 << 10),
    ],
)
def test_a_model_too_large_for_the_board_says_how_much_it_needs(
    tmp_path: Path, cache_env: Path, sizes: str, region: str, have: int
) -> None:
    project = model_project(tmp_path, "sized_model", **{"sizes.h": sizes})
    with pytest.raises(ModelTooLargeError) as info:
        build(project, load_board("qemu-m4"))
    message = str(info.value)
    needed = int(message.split(f"{region} needs ")[1].split()[0])
    assert needed > have and f"qemu-m4 has {have}" in message


def test_missing_toolchain_names_the_packages_to_install(
    tmp_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"gcc-arm-none-eabi.*scripts/setup.sh"):
        build(FIXTURES / "echo_model", load_board("qemu-m4"))


def test_a_directory_without_sources_is_refused(tmp_path: Path, cache_env: Path) -> None:
    with pytest.raises(BuildError, match=r"no \.c files"):
        build(tmp_path, load_board("qemu-m4"))
