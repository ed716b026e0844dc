"""Build a generated model project for a board into an ELF, with CMake and arm-none-eabi-gcc.

Two cache levels under `$HIL_CACHE_DIR` (default ~/.cache/tinyml-hil), both keyed by content:
the platform and kernel libraries are built once per board (key: the runtime, kernel and board
sources, the build files, the board's flags and the compiler), and a model is linked against
them in a tree keyed by its own sources plus the same inputs. An unchanged model is a cache hit
that runs no compiler at all (none needs to be installed); a changed one compiles only its own
files.

A backend (hil/backends/) may bring static libraries of its own (`Library`: CMSIS-NN's, TFLM's),
each built once per board, library version and flags in a tree of its own, and C++ sources
(compiled with arm-none-eabi-g++, no exceptions, no RTTI); their keys are part of the model's.

A finished tree holds a record (`hil-build.json`) of the SHA-256 of each output, the compiler
and the compile flags. A tree is only reused when its outputs still have those hashes; anything
else (a build killed half way, a deleted or damaged ELF or library, a tree from an older bench)
is deleted and built again, so a damaged cache heals on the next run instead of failing the
same way forever.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.boards import Board
from hil.errors import BuildError, CacheError, ModelTooLargeError
from hil.tools import first_available, require, version_line

REPO_ROOT = Path(__file__).resolve().parent.parent
_FIRMWARE_INPUTS = ("CMakeLists.txt", "cmake", "firmware/runtime", "firmware/kernels")
_RECORD = "hil-build.json"
_LIB_OUTPUTS = ("libhil_platform.a", "libhil_kernels.a")
_MODEL_OUTPUTS = ("model.elf", "model.map")
_BUILD_TIMEOUT_S = 900
#: A backend library (TFLM: ~160 C++ files) may take far longer on a loaded 2-core machine.
_LIBRARY_TIMEOUT_S = 3600
#: Bytes written to check that the cache can take a file (a full filesystem refuses them).
_PROBE_BYTES = 64 * 1024
_CACHE_HINT = "set HIL_CACHE_DIR to a writable directory with free space (a build needs a few MiB)"
_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_COMPILER_LINE = re.compile(
    r"\berror\b|undefined reference|multiple definition|will not fit in region|overflowed by",
    re.IGNORECASE,
)
_TOOL_LINE_STARTS = ("ninja:", "FAILED:", "CMake ", "make", "gmake")
_MAKE_SUMMARY = re.compile(r"\*\*\* \[[^\]]*\] Error \d+\s*$")
_NO_SPACE = ("No space left on device", "Disk quota exceeded")


@dataclass(frozen=True)
class Library:
    """A static library a backend builds from the user's checkout, once per board and key.

    `cmake_file` is included by the repository's CMakeLists.txt in library mode (with
    `HIL_LIBRARY_NAME` set to `name`) and must define a static library target of that name;
    `cmake_args` are extra `-D` options (e.g. the checkout's path). `key` names what decides
    the library's content besides the board and the compiler (backend version and flags), so a
    changed checkout or flag builds a new library. Model sources of the backend get
    `includes` and `defines`; `cxx` says the library needs the C++ runtime at link time.
    `label` names it in messages ("the CMSIS-NN library"), `hint` says what to do when its
    build fails.
    """

    name: str
    cmake_file: Path
    key: str
    cmake_args: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    cxx: bool = False
    label: str = ""
    hint: str = ""

    @property
    def file_name(self) -> str:
        return f"lib{self.name}.a"


@dataclass(frozen=True)
class BuildResult:
    """The linked image, its linker map, whether the cache already held it (built by an earlier
    run or by another process), and what built it: the compiler's version line and the compile
    flags of the model's sources (the libraries are compiled with the same flags)."""

    elf: Path
    map_file: Path
    cached: bool
    seconds: float
    compiler: str = ""
    compile_flags: tuple[str, ...] = ()


def cache_dir() -> Path:
    """Root of generated projects, libraries and ELFs (`$HIL_CACHE_DIR` or ~/.cache/tinyml-hil)."""
    env = os.environ.get("HIL_CACHE_DIR")
    # Absolute, because CMake and the linker run in other working directories.
    return Path(env).expanduser().absolute() if env else Path.home() / ".cache" / "tinyml-hil"


def prepare_cache_dir() -> Path:
    """`cache_dir()`, created, after checking it can take a file: one CacheError that says what
    to do (instead of a traceback from deep inside a build) when it is a file, read-only or
    full."""
    root = cache_dir()
    if root.exists() and not root.is_dir():
        raise CacheError(_cache_message(root, "it is a file, not a directory"))
    with cache_errors(root):
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root, prefix=".hil-probe-") as probe:
            probe.write(bytes(_PROBE_BYTES))
            probe.flush()
    return root


@contextmanager
def cache_errors(root: Path | None = None) -> Iterator[None]:
    """Turn an OSError from writing into the cache into a CacheError naming the cache and the
    fix. Wrap only writes into the cache, so other failures keep their own messages."""
    try:
        yield
    except OSError as exc:
        where = root or cache_dir()
        reason = _os_reason(exc)
        if exc.filename and Path(str(exc.filename)) != where:
            reason += f" (writing {exc.filename})"
        raise CacheError(_cache_message(where, reason)) from exc


#: Source file suffixes of a model project: C, and C++ (compiled without exceptions and RTTI).
_C_SUFFIXES = (".c",)
_CXX_SUFFIXES = (".cc", ".cpp")


def build(
    project_dir: Path,
    board: Board,
    *,
    jobs: int = 2,
    model_name: str | None = None,
    libraries: Sequence[Library] = (),
) -> BuildResult:
    """Compile and link `project_dir` (a generated model project) for `board`.

    `model_name` names the model in messages (otherwise the project's path does); `libraries`
    are the backend's own (built first, once per board and key, then linked). Raises
    ToolchainError naming the packages to install if CMake, the compiler or a build tool is
    missing (only when something must be compiled), BuildError with the compiler's or build
    tool's own error lines if the project does not compile or link, ModelTooLargeError if the
    image does not fit the board's flash or RAM, and CacheError if the cache cannot be written.
    """
    start = time.monotonic()
    project_dir = Path(project_dir).resolve()
    sources = [p for p in project_dir.glob("*") if p.suffix in _C_SUFFIXES + _CXX_SUFFIXES]
    if not project_dir.is_dir() or not sources:
        raise BuildError(f"model project {project_dir} has no C or C++ sources; generate it first")
    cxx = any(p.suffix in _CXX_SUFFIXES for p in sources) or any(lib.cxx for lib in libraries)
    named = f"model {model_name!r}" if model_name else f"model project {project_dir}"
    what = f"{named} (generated in {project_dir})" if model_name else named
    board_args = [
        f"-DHIL_BOARD_DIR={board.root}",
        f"-DHIL_BOARD_NAME={board.name}",
        f"-DHIL_CPU_FLAGS={';'.join(board.cpu_flags)}",
        f"-DHIL_BAUDRATE={board.serial.baudrate}",
    ]
    firmware = [*(REPO_ROOT / p for p in _FIRMWARE_INPUTS), board.root]
    lib_sources = _digest(firmware, "\n".join(board_args))
    # A backend library depends on the board's flags, the toolchain file and what library
    # mode of CMakeLists.txt runs, not on the bench's runtime, kernels or model build: editing
    # those must not rebuild TFLM (an hour on a loaded 2-core machine) or CMSIS-NN.
    board_key = _digest([REPO_ROOT / "cmake" / "arm-none-eabi.cmake"],
                        "\n".join([*board_args, _library_mode_text()]))  # fmt: skip
    backend_keys = {lib.name: _library_key(lib, board_key) for lib in libraries}
    model_sources = _digest([project_dir], lib_sources + "".join(backend_keys.values()))[:16]
    board_cache = prepare_cache_dir() / "build" / board.name

    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is not None:
        candidates = [board_cache / f"model-{model_sources}-{_short(_compiler_id(gcc))}"]
    else:  # no compiler here: an image another machine or PATH built is as good
        found = [p for p in board_cache.glob(f"model-{model_sources}-*") if p.is_dir()]
        candidates = sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
    for tree in candidates:
        record = _valid_record(tree, _MODEL_OUTPUTS)
        if record is not None:
            return _result(tree, record, cached=True, start=start)

    needed_for = f"to build {named} for {board.name}"
    tools = require(("cmake", "arm-none-eabi-gcc", *(("arm-none-eabi-g++",) if cxx else ())),
                    needed_for)
    generator = {"ninja": "Ninja", "make": "Unix Makefiles"}[
        first_available(("ninja", "make"), needed_for)
    ]
    compiler = _compiler_id(tools["arm-none-eabi-gcc"])
    lib_dir = board_cache / f"lib-{_short(lib_sources + compiler, 16)}"
    model_dir = board_cache / f"model-{model_sources}-{_short(compiler)}"
    libs = _Tree(lib_dir, _LIB_OUTPUTS, f"the libraries for board {board.name}", named)
    libs.ensure(generator, board_args, jobs, board, compiler)
    backend_libs: list[str] = []
    for lib in libraries:
        tree = board_cache / f"{lib.name}-{_short(backend_keys[lib.name] + compiler, 16)}"
        label = lib.label or f"the {lib.name} library"
        what_lib = f"{label} for board {board.name}"
        if lib.hint:
            what_lib += f" ({lib.hint})"
        lib_args = [*board_args, f"-DHIL_LIBRARY_CMAKE={lib.cmake_file}",
                    f"-DHIL_LIBRARY_NAME={lib.name}", *lib.cmake_args]
        _Tree(tree, (lib.file_name,), what_lib, named, _LIBRARY_TIMEOUT_S, resume=True).ensure(
            generator, lib_args, jobs, board, compiler
        )
        backend_libs.append(str(tree / lib.file_name))
    model_args = [*board_args, f"-DHIL_MODEL_DIR={project_dir}", f"-DHIL_LIB_DIR={lib_dir}"]
    if libraries:
        model_args += [
            f"-DHIL_BACKEND_LIBS={';'.join(backend_libs)}",
            f"-DHIL_MODEL_INCLUDES={';'.join(i for lib in libraries for i in lib.includes)}",
            f"-DHIL_MODEL_DEFINES={';'.join(d for lib in libraries for d in lib.defines)}",
        ]
    if cxx:
        model_args.append("-DHIL_LINK_CXX=ON")
    model = _Tree(model_dir, _MODEL_OUTPUTS, what, named)
    record, built = model.ensure(generator, model_args, jobs, board, compiler)
    return _result(model_dir, record, cached=not built, start=start)


def _result(tree: Path, record: dict[str, Any], *, cached: bool, start: float) -> BuildResult:
    return BuildResult(
        tree / "model.elf",
        tree / "model.map",
        cached,
        time.monotonic() - start,
        str(record.get("compiler", "")),
        tuple(str(f) for f in record.get("compile_flags", ())),
    )


def _library_key(lib: Library, board_key: str) -> str:
    """What decides a backend library's content: its CMake file, options, the backend's key
    (version and flags) and the board (its flags, the toolchain file, library mode)."""
    salt = "\n".join([lib.name, lib.key, *lib.cmake_args, *lib.includes, *lib.defines, board_key])
    return _digest([lib.cmake_file], salt)


def _library_mode_text() -> str:
    """The statements of CMakeLists.txt a library build runs: everything up to library mode's
    `return()`, without comments (the model part below it does not touch libraries)."""
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    start = text.find("if(DEFINED HIL_LIBRARY_CMAKE)")
    end = text.find("return()", start) if start >= 0 else -1
    head = text[:end] if end >= 0 else text
    return "\n".join(line for line in head.splitlines() if not line.lstrip().startswith("#"))


def _compiler_id(gcc: str) -> str:
    """Path and version of the compiler: a different compiler must not reuse libraries."""
    return f"{gcc}\n{version_line(gcc)}"


def _short(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


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


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _valid_record(tree: Path, outputs: Sequence[str]) -> dict[str, Any] | None:
    """The tree's build record if every output still has the hash recorded at build time."""
    try:
        record = json.loads((tree / _RECORD).read_text())
        hashes = record["outputs"]
        if any(hashes[name] != _file_sha256(tree / name) for name in outputs):
            return None
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel builds of the same tree wait for each other."""
    with cache_errors():
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path, "w")  # noqa: SIM115 (closed below, after unlocking)
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _Tree:
    """One CMake build tree in the cache: its outputs, and how to name it in messages."""

    path: Path
    outputs: tuple[str, ...]
    what: str  # in build errors
    named: str  # in "does not fit" errors
    timeout_s: float = _BUILD_TIMEOUT_S
    #: Resume a tree left without a record (a build that was stopped) instead of starting
    #: clean: for backend libraries, whose first build takes many minutes. Only Ninja trees,
    #: whose log marks a command killed half way as not done.
    resume: bool = False

    def ensure(
        self, generator: str, args: list[str], jobs: int, board: Board, compiler: str
    ) -> tuple[dict[str, Any], bool]:
        """The tree's record, building it first unless it is valid; and whether it was built.

        Checked again under the lock: a process that waited while another built the same tree
        reuses that build (and reports it as cached)."""
        tree = self.path
        with _locked(tree.with_name(tree.name + ".lock")):
            record = _valid_record(tree, self.outputs)
            if record is not None:
                return record, False
            resumable = self.resume and all(
                (tree / f).is_file() for f in ("build.ninja", ".ninja_log")
            )
            with cache_errors():
                if tree.exists() and not resumable:  # partial, damaged, older: start clean
                    shutil.rmtree(tree)
                tree.mkdir(parents=True, exist_ok=True)
            configure = ["cmake", "-G", generator, "--no-warn-unused-cli"]
            configure += ["-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", "-S", str(REPO_ROOT)]
            configure += ["-B", str(tree), *args]
            compile_ = ["cmake", "--build", str(tree), "-j", str(max(1, jobs))]
            log: list[str] = []
            for cmd in (configure, compile_):
                try:
                    proc = _run(cmd, self.timeout_s)
                except subprocess.TimeoutExpired as exc:
                    again = " (run again to resume it)" if self.resume else ""
                    raise BuildError(
                        f"building {self.what} took over {self.timeout_s:.0f} s and was "
                        f"stopped{again}"
                    ) from exc
                log.append(f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}")
                if proc.returncode != 0:
                    self._write(tree / "build.log", "\n".join(log))
                    self._raise_for(proc.stdout + proc.stderr, board)
            self._write(tree / "build.log", "\n".join(log))
            missing = [name for name in self.outputs if not (tree / name).is_file()]
            if missing:
                raise BuildError(
                    f"building {self.what} finished but made no {', '.join(missing)} "
                    f"(full log: {tree / 'build.log'})"
                )
            record = {
                "outputs": {name: _file_sha256(tree / name) for name in self.outputs},
                "compiler": compiler.split("\n", 1)[-1],
                "compile_flags": _compile_flags(tree),
            }
            # Written last and atomically: its presence means the outputs are complete.
            self._write(tree / _RECORD, json.dumps(record, indent=1) + "\n")
            return record, True

    @staticmethod
    def _write(path: Path, text: str) -> None:
        with cache_errors():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def _raise_for(self, output: str, board: Board) -> None:
        log = self.path / "build.log"
        if any(text in output for text in _NO_SPACE):
            raise CacheError(
                _cache_message(
                    cache_dir(),
                    f"its filesystem filled up (no space left on device) while building "
                    f"{self.what}",
                )
            )
        overflows = {m.group(1): int(m.group(2)) for m in _OVERFLOW.finditer(output)}
        if overflows:
            raise ModelTooLargeError(_overflow_message(self.named, overflows, board))
        raise BuildError(f"building {self.what} failed:\n{_error_lines(output)}\n(full log: {log})")


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a build command in a process group of its own, so a timeout (or Ctrl-C) stops the
    compilers under it too, not only CMake. SIGTERM first: Ninja runs each command in a process
    group of its own and stops them itself when it is terminated (not when it is killed)."""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.communicate(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _overflow_message(named: str, overflows: dict[str, int], board: Board) -> str:
    """Which memory overflowed, by how much, on which board (the linker only names regions)."""
    memories = {"FLASH": ("flash", board.flash_bytes), "RAM": ("RAM", board.ram_bytes)}
    parts = []
    for region, over in overflows.items():
        label, have = memories.get(region.upper(), (f"linker region {region}", 0))
        if have:
            parts.append(
                f"{label} needs {have + over:,} bytes but {board.name} has {have:,} "
                f"({over:,} bytes over)"
            )
        else:
            parts.append(f"{label} overflowed by {over:,} bytes")
    labels = [memories.get(r.upper(), (r,))[0] for r in overflows]
    note = ""
    if "RAM" in labels:
        note = "RAM holds the activation arena, the model's variables and the stack reserve. "
    return (
        f"{named} does not fit {board.name}: {'; '.join(parts)}. {note}Make the model smaller "
        f"(fewer or narrower layers, or a smaller input) or pick a board with more "
        f"{' and '.join(labels)} (`hil boards`)."
    )


def _error_lines(output: str, limit: int = 20) -> str:
    """The compiler's and linker's own error lines with their source excerpts; failing those,
    the build tool's (ninja, make, CMake) own error lines; failing those, the last lines."""
    lines = output.splitlines()
    picked = _compiler_errors(lines, limit) or _tool_errors(lines, limit)
    if not picked:
        picked = [line.strip() for line in lines if line.strip() and not line.startswith("-- ")]
        picked = picked[-5:]
    return "\n".join(f"  {line}" for line in picked) or "  (the build printed nothing)"


def _compiler_errors(lines: list[str], limit: int) -> list[str]:
    picked: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(_TOOL_LINE_STARTS) or "***" in line or not _COMPILER_LINE.search(line):
            continue
        picked.append(line.strip())
        for follow in lines[i + 1 : i + 3]:
            if re.match(r"\s*\d*\s*\|", follow):
                picked.append(follow.rstrip())
        if len(picked) >= limit:
            break
    return picked


def _tool_errors(lines: list[str], limit: int) -> list[str]:
    """ninja's "ninja: error: ..." (e.g. an input missing with no rule to make it), make's
    "*** ..." and CMake's "CMake Error ..." with the indented explanation below it."""
    picked: list[str] = []
    i = 0
    while i < len(lines) and len(picked) < limit:
        line = lines[i]
        i += 1
        if line.startswith("CMake Error"):
            picked.append(line.strip())
            body = 0
            while i < len(lines) and (not lines[i].strip() or lines[i][:1].isspace()):
                if lines[i].strip() and body < 8:
                    picked.append("  " + lines[i].strip())
                    body += 1
                i += 1
        elif _is_tool_error(line):
            picked.append(line.strip())
    if not picked:  # only make's "*** [target] Error N" summaries: the first says where
        picked = [line.strip() for line in lines if "***" in line][:1]
    return picked


def _is_tool_error(line: str) -> bool:
    if line.startswith("ninja: error") or "missing and no known rule" in line:
        return True
    return "***" in line and not _MAKE_SUMMARY.search(line)


def _compile_flags(tree: Path) -> list[str]:
    """The compiler flags CMake used for the tree's first source (from compile_commands.json),
    without paths: includes, dependency files, the source and the object."""
    try:
        entry = json.loads((tree / "compile_commands.json").read_text())[0]
        args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    except (OSError, ValueError, LookupError, TypeError):
        return []
    flags: list[str] = []
    skip_next = False
    for arg in args[1:]:
        if skip_next:
            skip_next = False
        elif arg in ("-o", "-c", "-I", "-isystem", "-MF", "-MT", "-MQ", "-include"):
            skip_next = True
        elif arg.startswith("-") and not arg.startswith(("-I", "-MD", "-MMD", "-MF", "-MT")):
            flags.append(arg)
    return flags


def _os_reason(exc: OSError) -> str:
    reasons = {
        errno.ENOSPC: "its filesystem is full (no space left on device)",
        errno.EDQUOT: "the disk quota is exhausted (no space left for this user)",
        errno.EROFS: "it is on a read-only filesystem",
        errno.EACCES: "this user may not write there (permission denied)",
        errno.EPERM: "this user may not write there (operation not permitted)",
        errno.ENOTDIR: "part of the path is a file, not a directory",
        errno.EEXIST: "a file is in the way of a directory",
        errno.ENOENT: "the directory cannot be created there (no such file or directory)",
    }
    return reasons.get(exc.errno or -1, exc.strerror or str(exc))


def _cache_message(root: Path, reason: str) -> str:
    source = "HIL_CACHE_DIR" if os.environ.get("HIL_CACHE_DIR") else "default, HIL_CACHE_DIR unset"
    return f"cannot use the build cache {root} ({source}): {reason}; {_CACHE_HINT}"
