"""Building model projects: caching, and the messages a user sees when a build cannot work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from platform_support import FIXTURES, model_project

from hil.boards import load_board
from hil.build import build
from hil.errors import BuildError, HilError, ModelTooLargeError, ToolchainError
from hil.measure import elf_sizes

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
    ("sizes", "region", "other", "have"),
    [
        (
            "#define FLASH_FILL_BYTES (1536u * 1024u)\n#define RAM_FILL_BYTES 16\n",
            "flash",
            "RAM",
            960 << 10,
        ),
        (
            "#define FLASH_FILL_BYTES 16\n#define RAM_FILL_BYTES (300u * 1024u)\n",
            "RAM",
            "flash",
            256 << 10,
        ),
    ],
)
def test_a_model_too_large_for_the_board_says_which_memory_and_how_much(
    tmp_path: Path, cache_env: Path, sizes: str, region: str, other: str, have: int
) -> None:
    project = model_project(tmp_path, "sized_model", **{"sizes.h": sizes})
    with pytest.raises(ModelTooLargeError) as info:
        build(project, load_board("qemu-m4"), model_name="sized")
    message = str(info.value)
    assert "model 'sized'" in message and str(project) not in message  # the model, not a path
    needed = int(message.split(f"{region} needs ")[1].split()[0].replace(",", ""))
    assert needed > have and f"qemu-m4 has {have:,}" in message
    assert other not in message  # only the memory that overflowed


def test_missing_toolchain_names_the_packages_to_install(
    tmp_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = model_project(tmp_path, "echo_model", **{"nonce.h": f"/* {uuid.uuid4()} */\n"})
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolchainError, match=r"gcc-arm-none-eabi.*scripts/setup.sh"):
        build(project, load_board("qemu-m4"))


def test_a_directory_without_sources_is_refused(tmp_path: Path, cache_env: Path) -> None:
    with pytest.raises(BuildError, match=r"has no C or C\+\+ sources; generate it first"):
        build(tmp_path, load_board("qemu-m4"))


# --- the cache heals (issue 7, item 7) ------------------------------------------------------


def _fresh(tmp_path: Path, fixture: str = "echo_model", **files: str) -> Path:
    """A copy of a fixture with a unique comment, so the session-wide cache has not seen it."""
    return model_project(tmp_path, fixture, **{"nonce.h": f"/* {uuid.uuid4()} */\n"}, **files)


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip a byte"])
def test_a_missing_or_corrupt_cached_elf_is_rebuilt(
    tmp_path: Path, cache_env: Path, damage: str
) -> None:
    board = load_board("qemu-m4")
    project = _fresh(tmp_path)
    first = build(project, board)
    good = first.elf.read_bytes()
    if damage == "delete":
        first.elf.unlink()
    elif damage == "truncate":
        first.elf.write_bytes(good[: len(good) // 3])
    else:
        middle = len(good) // 2
        first.elf.write_bytes(good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :])

    healed = build(project, board)
    assert not healed.cached
    assert healed.elf.read_bytes() == good  # the same sources link to the same image
    assert elf_sizes(healed.elf).flash_bytes > 0
    assert build(project, board).cached  # and the healed tree is a cache hit again


@pytest.mark.parametrize("damage", ["delete", "garbage"])
def test_damaged_libraries_are_rebuilt(tmp_path: Path, cache_env: Path, damage: str) -> None:
    board = load_board("qemu-m0")
    build(_fresh(tmp_path / "a"), board)  # makes sure the libraries are in the cache
    libs = sorted((cache_env / "build" / board.name).glob("lib-*/libhil_kernels.a"))
    assert libs
    for lib in libs:
        if damage == "delete":
            lib.unlink()
        else:
            lib.write_bytes(b"not an archive\n")
    healed = build(_fresh(tmp_path / "b"), board)
    assert elf_sizes(healed.elf).flash_bytes > 0


def _stub_cmake(tmp_path: Path, build_output: str) -> Path:
    """A `cmake` that configures fine and whose build fails printing only `build_output`."""
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "output.txt").write_text(build_output)
    script = stub / "cmake"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = --build ] && { cat "$(dirname "$0")/output.txt"; exit 1; }; '
        "done\nexit 0\n"
    )
    script.chmod(0o755)
    return stub


@pytest.mark.parametrize(
    ("output", "shown"),
    [
        (
            "ninja: error: '/c/lib-1/libhil_platform.a', needed by 'model.elf', missing and no "
            "known rule to make it\n",
            "'/c/lib-1/libhil_platform.a', needed by 'model.elf', missing",
        ),
        (
            "make[2]: *** No rule to make target '/c/libhil_platform.a', needed by "
            "'model.elf'.  Stop.\nmake[1]: *** [CMakeFiles/Makefile2:83: all] Error 2\n"
            "make: *** [Makefile:91: all] Error 2\n",
            "No rule to make target '/c/libhil_platform.a'",
        ),
        ("something unexpected went wrong\n", "something unexpected went wrong"),
    ],
)
def test_a_build_failure_without_compiler_errors_shows_the_build_tools_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, shown: str
) -> None:
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{_stub_cmake(tmp_path, output)}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(BuildError) as info:
        build(FIXTURES / "echo_model", load_board("qemu-m4"))
    assert shown in str(info.value)
    assert "no error lines found" not in str(info.value)


def test_a_cmake_error_is_shown_with_its_explanation(tmp_path: Path, cache_env: Path) -> None:
    project = _fresh(tmp_path)
    (project / "gone.c").symlink_to(tmp_path / "nowhere.c")  # listed, but cannot be read
    with pytest.raises(BuildError) as info:
        build(project, load_board("qemu-m4"))
    message = str(info.value)
    assert "CMake Error" in message
    assert "Cannot find source file" in message and "gone.c" in message


# --- tool checks (item 8) -------------------------------------------------------------------


def test_a_cached_image_needs_no_compiler_or_cmake(
    tmp_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = load_board("qemu-m4")
    project = _fresh(tmp_path)
    first = build(project, board)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    again = build(project, board)
    assert again.cached and again.elf == first.elf


def test_missing_ninja_and_make_name_the_package(
    tmp_path: Path, cache_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cmake", "arm-none-eabi-gcc"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolchainError, match=r"ninja.*apt-get install.*ninja-build"):
        build(_fresh(tmp_path), load_board("qemu-m4"))


# --- the cached flag (item 11) --------------------------------------------------------------

_BUILD_WHEN_TOLD = """
import sys, time
from pathlib import Path
from hil.boards import load_board
from hil.build import build
project, ready, go = (Path(a) for a in sys.argv[1:4])
ready.touch()
while not go.exists():
    time.sleep(0.002)
result = build(project, load_board("qemu-m4"))
print("cached" if result.cached else "built", result.elf)
"""


def test_a_build_made_by_another_process_counts_as_cached(tmp_path: Path, cache_env: Path) -> None:
    project = _fresh(tmp_path)
    build(_fresh(tmp_path / "libs"), load_board("qemu-m4"))  # libraries ready: only the model
    go = tmp_path / "go"
    procs = []
    for i in range(2):
        ready = tmp_path / f"ready{i}"
        args = [sys.executable, "-c", _BUILD_WHEN_TOLD, str(project), str(ready), str(go)]
        procs.append((ready, subprocess.Popen(args, stdout=subprocess.PIPE, text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start building the same new model at the same moment
    outputs = [proc.communicate(timeout=300)[0].split() for _, proc in procs]
    assert all(proc.returncode == 0 for _, proc in procs)
    assert sorted(words[0] for words in outputs) == ["built", "cached"]
    assert outputs[0][1] == outputs[1][1]


# --- an unusable cache directory (item 4) ---------------------------------------------------


def test_a_cache_dir_that_is_a_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    for path in (a_file, a_file / "below"):
        monkeypatch.setenv("HIL_CACHE_DIR", str(path))
        with pytest.raises(HilError) as info:
            build(FIXTURES / "echo_model", load_board("qemu-m4"))
        message = str(info.value)
        assert str(path) in message and "set HIL_CACHE_DIR to a writable directory" in message
        assert "\n" not in message


def test_a_cache_dir_without_write_permission_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):
        pytest.skip(
            "running as root, whom chmod does not stop from writing; the read-only mount "
            "test covers a cache root cannot write to"
        )
    monkeypatch.setenv("HIL_CACHE_DIR", str(locked / "cache"))
    with pytest.raises(HilError, match=r"locked/cache.*set HIL_CACHE_DIR to a writable directory"):
        build(FIXTURES / "echo_model", load_board("qemu-m4"))


_BUILD_IN_CACHE = (
    "from hil.boards import load_board; from hil.build import build; import sys; "
    "from hil.errors import HilError\n"
    "try:\n"
    "    build(sys.argv[1], load_board('qemu-m4'))\n"
    "except HilError as exc:\n"
    "    print(exc); sys.exit(7)\n"
)


@pytest.mark.parametrize(
    ("mount", "fill", "reason"),
    [
        ("ro,size=256k", False, "read-only"),
        ("size=256k", True, "no space left"),
        ("size=640k", False, "no space left"),  # room for the check, not for the build
    ],
)
def test_a_read_only_or_full_cache_dir_is_a_clear_error(
    tmp_path: Path, mount: str, fill: bool, reason: str
) -> None:
    """A real read-only or full filesystem: a small tmpfs mounted in a private mount namespace
    (`unshare -rm` needs no root where user namespaces are allowed)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"mount -t tmpfs -o {mount} tmpfs {mnt} || exit 99\n"
    if fill:
        script += f"mkdir {mnt}/cache && dd if=/dev/zero of={mnt}/fill bs=4k 2>/dev/null\n"
    script += f'HIL_CACHE_DIR={mnt}/cache "$@"\n'
    try:
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-c", _BUILD_IN_CACHE,
             str(FIXTURES / "echo_model")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed: cannot mount a small filesystem")
    if proc.returncode == 99 or "unshare failed" in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 7, proc.stdout + proc.stderr
    message = proc.stdout.strip()
    assert f"{mnt}/cache" in message and reason in message.lower()
    assert "set HIL_CACHE_DIR to a writable directory" in message


def test_a_relative_cache_dir_builds_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CMake and the linker run in the build tree: a relative HIL_CACHE_DIR once became
    # `-lrelcache/build/...` there and failed to link.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIL_CACHE_DIR", "relcache")
    project = model_project(tmp_path, "echo_model")
    built = build(project, load_board("qemu-m4"))
    assert built.elf.is_file() and built.elf.is_relative_to(tmp_path / "relcache")
