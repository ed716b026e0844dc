"""The `cmsis-nn` backend: per-op calls into CMSIS-NN's arm_*_s8 functions from the user's
checkout (`CMSIS_NN_ROOT`), the own kernels where CMSIS-NN has none or a restriction.

The project's own planner lays out the arena, CMSIS-NN's scratch buffers included (planned as
tensors that live only for their operator, sized for the board's core: `buffers`). The library
is built from the checkout once per board, checkout version and flags
(cmake/backends/cmsis_nn.cmake) and cached like the bench's own libraries. docs/backends.md
says what a checkout needs and which versions work.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from hil import codegen
from hil.backends.base import BackendUnavailable, checkout_root, checkout_version
from hil.build import REPO_ROOT, Library
from hil.lowering import supported_ops

from . import buffers
from .lowering import CMSIS_NN_OPS, make_lowering

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.codegen import GeneratedProject
    from hil.graph import Graph

ENV_VAR = "CMSIS_NN_ROOT"
CMAKE_FILE = REPO_ROOT / "cmake" / "backends" / "cmsis_nn.cmake"
#: Compile options of the library (in the report and its cache key). -O2 like the own kernels
#: and TFLM's kernels (CMSIS-NN's own CMake default is -Ofast); never -fno-builtin, which turns
#: CMSIS-NN's memcpy-based word reads into calls.
LIBRARY_FLAGS = ("-O2",)

#: What the generated code and the lowering rely on: (header, symbol). A checkout without one
#: is of an unsupported version.
REQUIRED_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("arm_nn_types.h", "arm_cmsis_nn_status"),
    ("arm_nn_types.h", "cmsis_nn_dw_conv_params"),
    ("arm_nn_types.h", "cmsis_nn_per_channel_quant_params"),
    ("arm_nn_types.h", "dilation"),
    ("arm_nnfunctions.h", "arm_convolve_wrapper_s8"),
    ("arm_nnfunctions.h", "arm_convolve_wrapper_s8_get_buffer_size"),
    ("arm_nnfunctions.h", "arm_depthwise_conv_wrapper_s8"),
    ("arm_nnfunctions.h", "arm_depthwise_conv_wrapper_s8_get_buffer_size"),
    ("arm_nnfunctions.h", "arm_fully_connected_s8"),
    ("arm_nnfunctions.h", "arm_fully_connected_per_channel_s8"),
    ("arm_nnfunctions.h", "arm_avgpool_s8"),
    ("arm_nnfunctions.h", "arm_max_pool_s8"),
    ("arm_nnfunctions.h", "arm_elementwise_add_s8"),
    ("arm_nnfunctions.h", "arm_elementwise_mul_s8"),
    ("arm_nnfunctions.h", "arm_softmax_s8"),
)
#: The versions this backend was checked against (docs/backends.md).
TESTED_WITH = "CMSIS-NN v7.0.0-33-g4ab83cc3 (arm_nnfunctions.h V.19.1.0)"

_REVISION = re.compile(r"\$Revision:\s*V\.(\d+)\.(\d+)\.(\d+)")


class CmsisNnBackend:
    """CMSIS-NN kernels per op (see the module docstring)."""

    name = "cmsis-nn"
    title = "CMSIS-NN"
    env_var: str | None = ENV_VAR

    def root(self) -> Path:
        root, why = checkout_root(ENV_VAR, "CMSIS-NN", "Include/arm_nnfunctions.h")
        if root is None:
            raise BackendUnavailable(f"backend 'cmsis-nn' is unavailable: {why}")
        return root

    def unavailable(self) -> str | None:
        root, why = checkout_root(ENV_VAR, "CMSIS-NN", "Include/arm_nnfunctions.h")
        if root is None:
            return why
        return _version_problem(root)

    def version(self) -> str:
        root = self.root()
        revision = header_revision(root)
        described = checkout_version(root, ("Include", "Source"))
        return f"{described} (arm_nnfunctions.h {revision})" if revision else described

    def flags(self, board: Board) -> tuple[str, ...]:
        return LIBRARY_FLAGS

    def numerics(self, board: Board) -> dict[str, str]:
        return {
            "rounding": "double (CMSIS_NN_USE_SINGLE_ROUNDING not set: rounding doubling high "
            "multiply, then rounding right shift, as TFLite's reference kernels)",
            "doubling_high_multiply": "ties rounded up (TFLite: away from zero), so a "
            "requantized value can end 1 LSB from the reference",
        }

    def supported_ops(self) -> list[str]:
        """Every op the bench lowers: CMSIS-NN's where it has a kernel, own ones elsewhere."""
        return supported_ops()

    def cmsis_nn_ops(self) -> list[str]:
        """The ops that run on CMSIS-NN kernels (when their restrictions hold)."""
        return list(CMSIS_NN_OPS)

    def library(self, board: Board) -> Library:
        root = self.root()
        return Library(
            name="cmsis_nn",
            cmake_file=CMAKE_FILE,
            key=f"{self.version()}\n{' '.join(LIBRARY_FLAGS)}",
            cmake_args=(
                f"-DCMSIS_NN_ROOT={root}",
                f"-DHIL_CMSIS_NN_FLAGS={';'.join(LIBRARY_FLAGS)}",
            ),
            includes=(str(root / "Include"),),
            label=f"the CMSIS-NN library ({ENV_VAR}={root})",
            hint=f"check that {ENV_VAR} points at a complete CMSIS-NN checkout; tested with "
            f"{TESTED_WITH}",
        )

    def generate(
        self,
        graph: Graph,
        out_dir: Path,
        *,
        board: Board,
        model_name: str,
        preserve_all: bool = False,
    ) -> GeneratedProject:
        reason = self.unavailable()
        if reason:
            raise BackendUnavailable(f"backend 'cmsis-nn' is unavailable: {reason}")
        arch = core_class(board)
        return codegen.generate(
            graph,
            None,
            out_dir,
            model_name=model_name,
            lower_fn=make_lowering(arch),
            preserve_all=preserve_all,
            headers=("arm_nnfunctions.h",),
            backend=self.name,
            backend_version=self.version(),
            backend_flags=(*LIBRARY_FLAGS, f"core:{arch}"),
            numerics=self.numerics(board),
            libraries=(self.library(board),),
        )


def header_revision(root: Path) -> str:
    """`V.x.y.z` of the checkout's arm_nnfunctions.h, or '' when it has none."""
    try:
        m = _REVISION.search((root / "Include" / "arm_nnfunctions.h").read_text(errors="replace"))
    except OSError:
        return ""
    return f"V.{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else ""


def _version_problem(root: Path) -> str | None:
    """Why the checkout is of a version this backend cannot use, or None."""
    texts: dict[str, str] = {}
    for header, symbol in REQUIRED_SYMBOLS:
        if header not in texts:
            try:
                texts[header] = (root / "Include" / header).read_text(errors="replace")
            except OSError:
                return (
                    f"{ENV_VAR}={root} has no Include/{header}: an incomplete or unsupported "
                    f"CMSIS-NN checkout; use one tested with this bench ({TESTED_WITH}) or newer"
                )
        if not re.search(rf"\b{re.escape(symbol)}\b", texts[header]):
            return (
                f"the CMSIS-NN checkout at {root} is of an unsupported version: Include/{header} "
                f"has no {symbol}; update it (tested with {TESTED_WITH})"
            )
    if not (root / "Source").is_dir():
        return f"{ENV_VAR}={root} has no Source/ folder: an incomplete CMSIS-NN checkout"
    return None


def core_class(board: Board) -> str:
    """"dsp" when the board's CPU flags give the DSP extension (Cortex-M4/M7/M33), "scalar"
    for plain Thumb cores (Cortex-M0/M0+/M3); BackendUnavailable for MVE cores (Cortex-M55/M85:
    not supported by this backend's buffer sizing)."""
    macros = _predefined(tuple(board.cpu_flags))
    if macros is None:  # no compiler here: go by the core's name
        core = board.core.lower()
        if any(core.startswith(c) for c in ("cortex-m55", "cortex-m85")):
            macros = {"__ARM_FEATURE_MVE"}
        elif any(core.startswith(c) for c in ("cortex-m4", "cortex-m7", "cortex-m33")):
            macros = {"__ARM_FEATURE_DSP"}
        else:
            macros = set()
    if "__ARM_FEATURE_MVE" in macros:
        raise BackendUnavailable(
            f"board {board.name} ({board.core}) has MVE (Helium); the cmsis-nn backend sizes "
            "scratch buffers for plain and DSP cores only: use --backend own or tflm"
        )
    return buffers.DSP if "__ARM_FEATURE_DSP" in macros else buffers.SCALAR


@functools.cache
def _predefined(cpu_flags: tuple[str, ...]) -> set[str] | None:
    """The feature macros arm-none-eabi-gcc predefines for these CPU flags (None: no gcc)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return None
    try:
        out = subprocess.run(
            [gcc, *cpu_flags, "-dM", "-E", "-x", "c", "-"],
            input="", capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {line.split()[1] for line in out.splitlines() if line.startswith("#define __ARM_FEAT")}
