"""Build a generated model project for a board into an ELF, with CMake and arm-none-eabi-gcc.

Two cache levels under `$HIL_CACHE_DIR` (default ~/.cache/tinyml-hil), both keyed by content:
the platform and kernel libraries are built once per board (key: the runtime, kernel and board
sources, the build files and the compiler), and a model is linked against them in a tree keyed
by its own sources plus the library key. An unchanged model is a cache hit that runs no
compiler at all; a changed one compiles only its own files.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hil.boards import Board
from hil.errors import BuildError, ModelTooLargeError, ToolchainError

REPO_ROOT = Path(__file__).resolve().parent.parent
_FIRMWARE_INPUTS = ("CMakeLists.txt", "cmake", "firmware/runtime", "firmware/kernels")
_DONE = "hil-build.done"
_BUILD_TIMEOUT_S = 900
_APT_HINT = (
    "install the Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi cmake "
    "(or run scripts/setup.sh, which does it)"
)
_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_ERROR_LINE = re.compile(
    r"\berror\b|undefined reference|multiple definition|will not fit in region|overflowed by",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BuildResult:
    """The linked image, its linker map, and whether the cache already held it."""

    elf: Path
    map_file: Path
    cached: bool
    seconds: float


def cache_dir() -> Path:
    """Root of generated projects, libraries and ELFs (`$HIL_CACHE_DIR` or ~/.cache/tinyml-hil)."""
    env = os.environ.get("HIL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinyml-hil"


def build(project_dir: Path, board: Board, *, jobs: int = 2) -> BuildResult:
    """Compile and link `project_dir` (a generated model project) for `board`.

    Raises ToolchainError if CMake or the compiler is missing, BuildError with the compiler's
    own error lines if the project does not compile or link, and ModelTooLargeError if the image
    does not fit the board's flash or RAM.
    """
    start = time.monotonic()
    project_dir = Path(project_dir).resolve()
    if not project_dir.is_dir() or not any(project_dir.glob("*.c")):
        raise BuildError(f"model project {project_dir} has no .c files; generate it first")
    generator = _generator()
    lib_key = _digest([*(REPO_ROOT / p for p in _FIRMWARE_INPUTS), board.root], _compiler_id())
    board_cache = cache_dir() / "build" / board.name
    lib_dir = board_cache / f"lib-{lib_key[:16]}"
    model_key = _digest([project_dir], lib_key)
    model_dir = board_cache / f"model-{model_key[:16]}"
    result = BuildResult(model_dir / "model.elf", model_dir / "model.map", True, 0.0)
    if (model_dir / _DONE).is_file() and result.elf.is_file():
        return _finish(result, start)

    board_args = [
        f"-DHIL_BOARD_DIR={board.root}",
        f"-DHIL_BOARD_NAME={board.name}",
        f"-DHIL_CPU_FLAGS={';'.join(board.cpu_flags)}",
        f"-DHIL_BAUDRATE={board.serial.baudrate}",
    ]
    what = f"the libraries for board {board.name}"
    _build_tree(lib_dir, generator, board_args, jobs, what, board)
    model_args = [*board_args, f"-DHIL_MODEL_DIR={project_dir}", f"-DHIL_LIB_DIR={lib_dir}"]
    what = f"model project {project_dir} for board {board.name}"
    _build_tree(model_dir, generator, model_args, jobs, what, board)
    return _finish(BuildResult(result.elf, result.map_file, False, 0.0), start)


def _finish(result: BuildResult, start: float) -> BuildResult:
    return BuildResult(result.elf, result.map_file, result.cached, time.monotonic() - start)


def _generator() -> str:
    missing = [tool for tool in ("cmake", "arm-none-eabi-gcc") if shutil.which(tool) is None]
    if missing:
        raise ToolchainError(f"{' and '.join(missing)} not found on PATH: {_APT_HINT}")
    if shutil.which("ninja"):
        return "Ninja"
    if shutil.which("make"):
        return "Unix Makefiles"
    raise ToolchainError("neither ninja nor make found on PATH: install ninja-build or make")


@functools.cache
def _compiler_id() -> str:
    """Path and version of the compiler: a different compiler must not reuse libraries."""
    gcc = shutil.which("arm-none-eabi-gcc") or "arm-none-eabi-gcc"
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False).stdout
    return f"{gcc}\n{out.splitlines()[0] if out else ''}"


def _digest(roots: list[Path], salt: str) -> str:
    """SHA-256 over the relative paths and contents of every file under `roots`."""
    h = hashlib.sha256(salt.encode())
    for root in roots:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            rel = f.relative_to(root) if root.is_dir() else f.name
            h.update(f"\0{root.name}/{rel}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel builds of the same tree wait for each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_tree(
    tree: Path, generator: str, args: list[str], jobs: int, what: str, board: Board
) -> None:
    with _locked(tree.with_name(tree.name + ".lock")):
        if (tree / _DONE).is_file():
            return
        configure = ["cmake", "-G", generator, "--no-warn-unused-cli"]
        configure += ["-S", str(REPO_ROOT), "-B", str(tree), *args]
        compile_ = ["cmake", "--build", str(tree), "-j", str(max(1, jobs))]
        log = []
        for cmd in (configure, compile_):
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise BuildError(
                    f"building {what} took over {_BUILD_TIMEOUT_S} s and was stopped"
                ) from exc
            log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
            if proc.returncode != 0:
                (tree / "build.log").write_text("\n".join(log))
                _raise_for(proc.stdout + proc.stderr, what, board, tree / "build.log")
        (tree / "build.log").write_text("\n".join(log))
        (tree / _DONE).write_text("ok\n")


def _raise_for(output: str, what: str, board: Board, log: Path) -> None:
    overflows = {m.group(1): int(m.group(2)) for m in _OVERFLOW.finditer(output)}
    if overflows:
        capacity = {"FLASH": board.flash_bytes, "RAM": board.ram_bytes}
        parts = []
        for region, over in overflows.items():
            have = capacity.get(region)
            if have is None:
                parts.append(f"region {region} overflowed by {over} bytes")
            else:
                parts.append(
                    f"{region} needs {have + over} bytes but {board.name} has {have} "
                    f"({over} bytes over)"
                )
        raise ModelTooLargeError(
            f"{what} does not fit: {'; '.join(parts)}. RAM includes the firmware's stack "
            "reserve. Make the model smaller (fewer or narrower layers, smaller input) or pick "
            "a board with more memory."
        )
    raise BuildError(f"building {what} failed:\n{_error_lines(output)}\n(full log: {log})")


def _error_lines(output: str, limit: int = 20) -> str:
    """The compiler's and linker's own error lines, each with its source excerpt."""
    lines = output.splitlines()
    picked: list[str] = []
    for i, line in enumerate(lines):
        if not _ERROR_LINE.search(line) or line.startswith(("ninja:", "FAILED:", "gmake")):
            continue
        picked.append(line.strip())
        for follow in lines[i + 1 : i + 3]:
            if re.match(r"\s*\d*\s*\|", follow):
                picked.append(follow.rstrip())
        if len(picked) >= limit:
            break
    return "\n".join(f"  {line}" for line in picked) or "  (no error lines found; see the log)"
