"""The user's TensorFlow Lite Micro checkout (`TFLM_ROOT`): is it usable, and what to build.

Everything here is computed from the checkout itself, never from a list copied out of TFLM's
Makefile: the source rules below are the ones TFLM's own Makefile applies
(tensorflow/lite/micro/tools/make/{Makefile,sources.inc,ext_libs/cmsis_nn.inc}), re-stated as
globs, so a newer checkout with new kernels builds without a change here.

- core: `tensorflow/lite/micro/{,arena_allocator/,memory_planner/,tflite_bridge/}*.cc`, without
  tests and test helpers, and without `debug_log.cc` (the generated project is the platform
  port: it defines DebugLog/DebugVsnprintf itself, so nothing pulls in stdio);
- the sources TFLM shares with TFLite: every `*.cc`/`*.c` under `tensorflow/` outside
  `tensorflow/lite/micro` and `tensorflow/lite/experimental`, without `tensorflow/lite/array.cc`
  (excluded under TF_LITE_STATIC_MEMORY);
- kernels: `tensorflow/lite/micro/kernels/*.cc` without tests and test data; with the
  `cmsis_nn` optimized kernels, a file of the same name in `kernels/cmsis_nn/` replaces the
  reference one (TFLM's `specialize_files.py` rule). CMSIS-NN's own sources come from the
  cmsis-nn backend's library (`CMSIS_NN_ROOT`).

The third-party headers TFLM's Makefile downloads (flatbuffers, gemmlowp, ruy) must be in
`tensorflow/lite/micro/tools/make/downloads/` (a checkout after `make third_party_downloads`),
or in `third_party/` (a tree exported by `create_tflm_tree.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hil.backends.base import BackendUnavailable, checkout_root, checkout_version

ENV_VAR = "TFLM_ROOT"
#: A file every TFLM checkout has: tells a TFLM checkout from any other directory.
MARKER = "tensorflow/lite/micro/micro_interpreter.h"
#: The checkout this backend was written and tested against.
TESTED_WITH = "tflite-micro 90b983c2 (2026-08-20) with flatbuffers v25.9.23"

MICRO = "tensorflow/lite/micro"
DOWNLOADS = f"{MICRO}/tools/make/downloads"

#: What the generated project and the library build rely on, as (file, text that must be in
#: it, what it is). A checkout without one is of an unsupported (older) version.
REQUIRED_API: tuple[tuple[str, str, str], ...] = (
    (f"{MICRO}/micro_interpreter.h", "arena_used_bytes", "MicroInterpreter::arena_used_bytes()"),
    (
        f"{MICRO}/micro_interpreter.h",
        "MicroProfilerInterface* profiler",
        "a profiler argument of MicroInterpreter",
    ),
    (f"{MICRO}/micro_mutable_op_resolver.h", "TFLMRegistration", "TFLMRegistration"),
    (
        f"{MICRO}/micro_mutable_op_resolver.h",
        "AddBuiltin(BuiltinOperator_",
        "MicroMutableOpResolver::AddBuiltin",
    ),
    (
        f"{MICRO}/micro_profiler_interface.h",
        "BeginEvent(const char* tag)",
        "MicroProfilerInterface::BeginEvent(const char*)",
    ),
    (f"{MICRO}/debug_log.h", "DebugVsnprintf", "DebugLog(format, va_list) and DebugVsnprintf"),
    (f"{MICRO}/micro_arena_constants.h", "MicroArenaBufferAlignment", "MicroArenaBufferAlignment"),
)

#: Third-party headers the core and the kernels include: (name, header under its directory).
THIRD_PARTY: tuple[tuple[str, str], ...] = (
    ("flatbuffers", "include/flatbuffers/flatbuffers.h"),
    ("gemmlowp", "fixedpoint/fixedpoint.h"),
    ("ruy", "ruy/profiler/instrumentation.h"),
)
#: Where each third-party include path points, relative to its directory.
_INCLUDE_SUBDIR = {"flatbuffers": "include", "gemmlowp": "", "ruy": ""}

#: Source files that are test support, not library code (besides *_test*.cc).
_TEST_SUPPORT = re.compile(r"(^|_)test(_|\.)|^fake_|^mock_|_generated_data\.cc$")
#: Core sources the generated project replaces (it is the platform port).
_PORT_FILES = frozenset({"debug_log.cc"})
_CORE_DIRS = ("", "arena_allocator", "memory_planner", "tflite_bridge")
_SHARED_SKIP_DIRS = (f"{MICRO}", "tensorflow/lite/experimental")
_SHARED_SKIP_FILES = frozenset({"tensorflow/lite/array.cc"})

_FB_VERSION = re.compile(r"#define\s+FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION)\s+(\d+)")
_FB_ASSERT = re.compile(
    r"FLATBUFFERS_VERSION_MAJOR\s*==\s*(\d+)\s*&&\s*FLATBUFFERS_VERSION_MINOR\s*==\s*(\d+)\s*&&"
    r"\s*FLATBUFFERS_VERSION_REVISION\s*==\s*(\d+)"
)


@dataclass(frozen=True)
class Sources:
    """What the TFLM library compiles: core (TFLM's -Os) and kernels (TFLM's -O2)."""

    core: tuple[Path, ...]
    kernels: tuple[Path, ...]
    #: kernels taken from kernels/cmsis_nn/ instead of the reference file of the same name
    optimized: tuple[str, ...] = ()


class TflmCheckout:
    """A validated TFLM checkout: its root, third-party include paths and version."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.third_party = _third_party_dirs(root)
        _check_api(root)
        _check_flatbuffers(root, self.third_party["flatbuffers"])

    @classmethod
    def from_env(cls) -> TflmCheckout:
        """The checkout `TFLM_ROOT` points at; BackendUnavailable says what is wrong with it."""
        root, why = checkout_root(ENV_VAR, "tflite-micro", MARKER)
        if root is None:
            raise BackendUnavailable(why or f"{ENV_VAR} is not usable")
        return cls(root)

    def version(self) -> str:
        """`git describe --always --dirty` of the checkout, or a hash of its sources."""
        return checkout_version(self.root, ("tensorflow", "signal"))

    def includes(self) -> tuple[str, ...]:
        """Include directories of the library and of a generated project (root first)."""
        dirs = [self.root]
        for name, _ in THIRD_PARTY:
            sub = _INCLUDE_SUBDIR[name]
            dirs.append(self.third_party[name] / sub if sub else self.third_party[name])
        return tuple(str(d) for d in dirs)

    def sources(self, optimized_kernel_dir: str | None = None) -> Sources:
        """The library's sources by TFLM's own rules (module docstring). With
        `optimized_kernel_dir` ("cmsis_nn") its files replace the reference kernels of the
        same name."""
        micro = self.root / MICRO
        core: list[Path] = []
        for sub in _CORE_DIRS:
            folder = micro / sub if sub else micro
            core += [
                f
                for f in sorted(folder.glob("*.cc"))
                if not _TEST_SUPPORT.search(f.name) and f.name not in _PORT_FILES
            ]
        core += _shared_sources(self.root)
        override: dict[str, Path] = {}
        if optimized_kernel_dir:
            special = micro / "kernels" / optimized_kernel_dir
            if not special.is_dir():
                raise BackendUnavailable(
                    f"the TFLM checkout at {self.root} has no {MICRO}/kernels/"
                    f"{optimized_kernel_dir}/: it cannot build TFLM with "
                    f"OPTIMIZED_KERNEL_DIR={optimized_kernel_dir}; update the checkout "
                    f"(tested with {TESTED_WITH}) or unset CMSIS_NN_ROOT for the reference kernels"
                )
            override = {f.name: f for f in special.glob("*.cc")}
        kernels: list[Path] = []
        used: list[str] = []
        for f in sorted((micro / "kernels").glob("*.cc")):
            if _TEST_SUPPORT.search(f.name):
                continue
            if f.name in override:
                kernels.append(override[f.name])
                used.append(f.name)
            else:
                kernels.append(f)
        if not core or not kernels:
            raise BackendUnavailable(
                f"the TFLM checkout at {self.root} has no sources under {MICRO} "
                "(an incomplete checkout); clone tflite-micro again"
            )
        return Sources(tuple(core), tuple(kernels), tuple(used))


def _shared_sources(root: Path) -> list[Path]:
    """Sources TFLM shares with TFLite (outside tensorflow/lite/micro), like sources.inc."""
    found = []
    for f in sorted((root / "tensorflow").rglob("*")):
        if f.suffix not in (".cc", ".c") or not f.is_file():
            continue
        rel = f.relative_to(root).as_posix()
        if rel in _SHARED_SKIP_FILES or any(rel.startswith(d + "/") for d in _SHARED_SKIP_DIRS):
            continue
        if _TEST_SUPPORT.search(f.name):
            continue
        found.append(f)
    return found


def _third_party_dirs(root: Path) -> dict[str, Path]:
    """Each third-party directory, from the make downloads or an exported tree's third_party/;
    BackendUnavailable names exactly what is missing and where it must go."""
    dirs: dict[str, Path] = {}
    missing: list[str] = []
    for name, header in THIRD_PARTY:
        for base in (root / DOWNLOADS, root / "third_party"):
            if (base / name / header).is_file():
                dirs[name] = base / name
                break
        else:
            missing.append(f"{name} ({DOWNLOADS}/{name}/{header})")
    if missing:
        raise BackendUnavailable(
            f"the TFLM checkout at {root} lacks the third-party headers TFLM's Makefile "
            f"downloads: {', '.join(missing)}. On a machine with internet access run "
            f"`make -f {MICRO}/tools/make/Makefile third_party_downloads` in the checkout (or "
            f"copy {DOWNLOADS}/{{flatbuffers,gemmlowp,ruy}} from a checkout that has them); "
            "docs/backends.md says what an offline checkout needs"
        )
    return dirs


def _check_api(root: Path) -> None:
    texts: dict[str, str] = {}
    for rel, needle, what in REQUIRED_API:
        if rel not in texts:
            try:
                texts[rel] = (root / rel).read_text(errors="replace")
            except OSError:
                raise BackendUnavailable(
                    f"the TFLM checkout at {root} has no {rel}: an incomplete checkout or an "
                    f"unsupported version; use a tflite-micro checkout like {TESTED_WITH}"
                ) from None
        if needle not in texts[rel]:
            raise BackendUnavailable(
                f"the TFLM checkout at {root} is of an unsupported version: {rel} has no "
                f"{what}; update it to a recent tflite-micro (tested with {TESTED_WITH})"
            )


def flatbuffers_version(flatbuffers_dir: Path) -> tuple[int, int, int] | None:
    """The version of a flatbuffers tree from its base.h, or None when it has none."""
    try:
        text = (flatbuffers_dir / "include/flatbuffers/base.h").read_text(errors="replace")
    except OSError:
        return None
    parts = dict(_FB_VERSION.findall(text))
    try:
        return int(parts["MAJOR"]), int(parts["MINOR"]), int(parts["REVISION"])
    except KeyError:
        return None


def _check_flatbuffers(root: Path, flatbuffers_dir: Path) -> None:
    """TFLM's generated schema static-asserts one exact flatbuffers version: say so up front
    instead of failing 20 files into the library build."""
    wanted = None
    for schema in sorted(root.glob("tensorflow/**/schema_generated.h")):
        m = _FB_ASSERT.search(schema.read_text(errors="replace"))
        if m:
            wanted = tuple(int(x) for x in m.groups())
            break
    have = flatbuffers_version(flatbuffers_dir)
    if wanted is not None and have is not None and have != wanted:
        need = "v" + ".".join(map(str, wanted))
        raise BackendUnavailable(
            f"the TFLM checkout at {root} needs flatbuffers {need} (its schema_generated.h "
            f"checks the exact version), but {flatbuffers_dir} holds v{'.'.join(map(str, have))}"
            f"; put flatbuffers {need} there (what `make third_party_downloads` fetches)"
        )
