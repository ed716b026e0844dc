"""The `tflm` backend: the model run by TensorFlow Lite Micro from the user's checkout
(`TFLM_ROOT`), with TFLM's reference kernels or, when `CMSIS_NN_ROOT` is also set, its
`cmsis_nn` optimized kernels (TFLM's `OPTIMIZED_KERNEL_DIR=cmsis_nn`).

The generated project (firmware/templates/tflm/) embeds the .tflite as a const 16-aligned
array, registers exactly the model's ops in a `MicroMutableOpResolver<N>` (`resolver`), times
each operator through a `MicroProfilerInterface` that ends each layer with the runtime's
`hil_layer_end()`, and provisions the smallest arena that works, measured on the target by a
probe image (`arena`). TFLM itself is one static library per board, checkout, kernels and
flags (cmake/backends/tflm.cmake; sources by TFLM's own rules, `checkout`), cached like the
bench's own libraries; the cmsis_nn kernels link the cmsis-nn backend's CMSIS-NN library.
docs/backends.md says what a checkout needs to build offline.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hil import codegen
from hil.backends.base import BackendUnavailable
from hil.build import REPO_ROOT, Library
from hil.codegen import C_TYPES, GeneratedProject, IoInfo, LayerInfo
from hil.errors import ModelError, UnsupportedOpError
from hil.lowering import lower
from hil.lowering.base import LowerContext

from . import arena as arena_mod
from .checkout import ENV_VAR, TESTED_WITH, TflmCheckout
from .resolver import model_ops, resolver_calls, resolver_table

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.graph import Graph

CMAKE_FILE = REPO_ROOT / "cmake" / "backends" / "tflm.cmake"
#: Picks the kernels: "reference" or "cmsis_nn" (default: cmsis_nn when CMSIS_NN_ROOT is set).
KERNELS_VAR = "HIL_TFLM_KERNELS"
REFERENCE = "reference"
CMSIS_NN = "cmsis_nn"

#: Defines of the libraries and of the generated project (they must agree: they change the
#: layout of TFLM's structs). TFLM's Makefile defaults: static memory, kernels optimized for
#: speed; TF_LITE_MCU_DEBUG_LOG makes TFLITE_ABORT log and stop instead of calling abort();
#: FLATBUFFERS_LOCALE_INDEPENDENT=0 is what TFLM's flatbuffers patch and Bazel build set.
#: NDEBUG as in TFLM's `BUILD_TYPE=release_with_logs`, the build its Makefile recommends for
#: profiling: without it the reference kernels check every index (TFLITE_DCHECK in Offset())
#: and run about 5x slower than a deployment. Logs and per-operator profiling stay (no
#: TF_LITE_STRIP_ERROR_STRINGS). A CMSIS-NN status the cmsis_nn glue checks only by DCHECK
#: would show up as outputs that differ from the reference.
DEFINES = (
    "NDEBUG",
    "TF_LITE_STATIC_MEMORY",
    "TF_LITE_MCU_DEBUG_LOG",
    "KERNELS_OPTIMIZED_FOR_SPEED",
    "FLATBUFFERS_LOCALE_INDEPENDENT=0",
)
CMSIS_NN_DEFINES = ("CMSIS_NN", "ARM_NN_ENABLE_F16=0", "ARM_NN_ENABLE_F32=0")
#: Optimization levels of TFLM's Makefile: the core for size, the kernels for speed.
CORE_FLAGS = ("-Os",)
KERNEL_FLAGS = ("-O2",)

#: Graph dtype -> TfLiteType of the tensor TFLM holds.
TFLITE_TYPES = {
    "int8": "kTfLiteInt8",
    "uint8": "kTfLiteUInt8",
    "int16": "kTfLiteInt16",
    "int32": "kTfLiteInt32",
    "float32": "kTfLiteFloat32",
}

_REGISTER_DEF = re.compile(r"\bTFLMRegistration\s+Register_(\w+)\s*\(\s*\)\s*\{")
_DEFAULT_REG = re.compile(r"=\s*(?:tflite::)?Register_(\w+)\s*\(\s*\)")


class TflmBackend:
    """TensorFlow Lite Micro's interpreter and kernels (see the module docstring)."""

    name = "tflm"
    title = "TFLM"
    env_var: str | None = ENV_VAR

    # -- the checkout ---------------------------------------------------------------------

    def checkout(self) -> TflmCheckout:
        """The validated checkout; BackendUnavailable says what is missing and what to do."""
        try:
            return _checkout(os.environ.get(ENV_VAR, ""))
        except BackendUnavailable as exc:
            raise BackendUnavailable(f"backend 'tflm' is unavailable: {exc}") from None

    def kernels(self) -> str:
        """"cmsis_nn" or "reference" (HIL_TFLM_KERNELS, else cmsis_nn when CMSIS_NN_ROOT is set)."""
        choice = os.environ.get(KERNELS_VAR, "").strip().lower().replace("-", "_")
        if choice and choice not in (REFERENCE, CMSIS_NN):
            raise BackendUnavailable(
                f"backend 'tflm' is unavailable: {KERNELS_VAR}={choice!r}; set it to "
                f"'{REFERENCE}' or '{CMSIS_NN}' (or unset it)"
            )
        if choice:
            return choice
        return CMSIS_NN if os.environ.get("CMSIS_NN_ROOT", "").strip() else REFERENCE

    def _cmsis_nn(self) -> Any:
        from hil.backends import get_backend

        backend = get_backend("cmsis-nn")
        reason = backend.unavailable()
        if reason:
            raise BackendUnavailable(
                f"backend 'tflm' with the cmsis_nn kernels needs CMSIS-NN: {reason} (or set "
                f"{KERNELS_VAR}={REFERENCE} for TFLM's reference kernels)"
            )
        return backend

    def unavailable(self) -> str | None:
        try:
            self.checkout()
            if self.kernels() == CMSIS_NN:
                self._cmsis_nn()
        except BackendUnavailable as exc:
            return str(exc).removeprefix("backend 'tflm' is unavailable: ")
        return None

    def version(self) -> str:
        described = self.checkout().version()
        if self.kernels() == CMSIS_NN:
            return f"{described} + CMSIS-NN {self._cmsis_nn().version()}"
        return described

    def flags(self, board: Board) -> tuple[str, ...]:
        kernels = self.kernels()
        defines = DEFINES + (CMSIS_NN_DEFINES if kernels == CMSIS_NN else ())
        return (
            f"kernels:{kernels}",
            *(f"-D{d}" for d in defines),
            *(f"core:{f}" for f in CORE_FLAGS),
            *(f"kernels:{f}" for f in KERNEL_FLAGS),
        )

    def numerics(self, board: Board) -> dict[str, str]:
        if self.kernels() == CMSIS_NN:
            rounding = (
                "double (TFLITE_SINGLE_ROUNDING and CMSIS_NN_USE_SINGLE_ROUNDING not set: "
                "rounding doubling high multiply, then rounding right shift)"
            )
        else:
            rounding = (
                "double (TFLITE_SINGLE_ROUNDING not set: TFLite's reference requantization, "
                "rounding doubling high multiply, then rounding right shift)"
            )
        return {"rounding": rounding, "kernels": self.kernels()}

    def supported_ops(self) -> list[str]:
        """The builtin ops the checkout's MicroMutableOpResolver can register ([] without a
        usable checkout)."""
        try:
            return sorted(resolver_table(self.checkout().root))
        except BackendUnavailable:
            return []

    # -- the library ----------------------------------------------------------------------

    def libraries(self, board: Board) -> tuple[Library, ...]:
        """TFLM's kernels, TFLM's core (and CMSIS-NN, for the cmsis_nn kernels), in link
        order. The core does not depend on the kernel set, so both kernel sets share it."""
        checkout = self.checkout()
        kernels = self.kernels()
        sources = checkout.sources(CMSIS_NN if kernels == CMSIS_NN else None)
        includes = list(checkout.includes())
        defines = list(DEFINES)
        extra: list[Library] = []
        if kernels == CMSIS_NN:
            cmsis = self._cmsis_nn()
            nn_root = cmsis.root()
            # TFLM's glue includes "Include/arm_nnfunctions.h" (root) and CMSIS-NN's own
            # headers include each other by name (Include/).
            includes += [str(nn_root), str(nn_root / "Include")]
            defines += CMSIS_NN_DEFINES
            extra.append(cmsis.library(board))
        hint = (
            f"check that {ENV_VAR} points at a complete tflite-micro checkout with its "
            f"third-party headers (docs/backends.md); tested with {TESTED_WITH}"
        )

        def part(name: str, files: tuple[Path, ...], flags: tuple[str, ...], what: str,
                 incs: list[str], defs: list[str], key: str) -> Library:  # fmt: skip
            return Library(
                name=name,
                cmake_file=CMAKE_FILE,
                key=key,
                cmake_args=(
                    f"-DHIL_TFLM_SOURCES={';'.join(map(str, files))}",
                    f"-DHIL_TFLM_INCLUDES={';'.join(incs)}",
                    f"-DHIL_TFLM_DEFINES={';'.join(defs)}",
                    f"-DHIL_TFLM_FLAGS={';'.join(flags)}",
                ),
                includes=tuple(incs),
                defines=tuple(defs),
                cxx=True,
                label=f"the TFLM library ({what}, {ENV_VAR}={checkout.root})",
                hint=hint,
            )

        base = [checkout.version(), *DEFINES]
        core = part("tflm_core", sources.core, CORE_FLAGS, "core",
                    list(checkout.includes()), list(DEFINES),
                    "\n".join([*base, *CORE_FLAGS]))  # fmt: skip
        kernel_lib = part(f"tflm_kernels_{kernels}", sources.kernels, KERNEL_FLAGS,
                          f"{kernels} kernels", includes, defines,
                          "\n".join([self.version(), *self.flags(board)]))  # fmt: skip
        return (kernel_lib, core, *extra)

    # -- the project ----------------------------------------------------------------------

    def generate(
        self,
        graph: Graph,
        out_dir: Path,
        *,
        board: Board,
        model_name: str,
        preserve_all: bool = False,
    ) -> GeneratedProject:
        checkout = self.checkout()
        if graph.flatbuffer is None:
            raise ModelError(
                f"model {model_name!r} has no .tflite bytes to embed (a graph built in code): "
                "the tflm backend runs the model file itself; import it with hil.importer"
            )
        if not graph.operators:
            raise ModelError(f"model {model_name!r} has no operators: nothing to profile")
        calls = resolver_calls(graph, resolver_table(checkout.root), checkout=str(checkout.root))
        check_semantics(graph, model_name)
        libraries = self.libraries(board)
        out = Path(out_dir)
        common = _Common(
            graph=graph,
            model_name=model_name,
            calls=calls,
            layers=self._layers(graph, checkout),
            backend=self,
            board=board,
            libraries=libraries,
            preserve_all=preserve_all,
        )
        probe = common.render(
            out.with_name(out.name + "-probe"),
            probe=True,
            arena_bytes=arena_mod.probe_arena_bytes(board),
        )
        key = hashlib.sha256(
            "\n".join(
                [
                    str(arena_mod.PROBE_VERSION),
                    f"preserve_all={preserve_all}",
                    hashlib.sha256(graph.flatbuffer).hexdigest(),
                    self.version(),
                    *self.flags(board),
                    board.name,
                    *board.cpu_flags,
                ]
            ).encode()
        ).hexdigest()[:24]
        fit = arena_mod.find_arena(probe, board, libraries, key=key, model_name=model_name)
        out_offsets = fit.offsets[len(graph.inputs) :]
        if any(o < 0 for o in out_offsets):
            raise ModelError(
                f"TFLM keeps an output of model {model_name!r} outside its arena (offsets "
                f"{list(out_offsets)}); the bench cannot read it back"
            )
        if len(out_offsets) != len(graph.outputs) + len(probe.debug_tensors):
            raise ModelError(f"the TFLM arena probe of {model_name!r} reported "
                             f"{len(fit.offsets)} tensor offsets; clear $HIL_CACHE_DIR/tflm-arena")
        return common.render(
            out,
            probe=False,
            arena_bytes=fit.provisioned_bytes,
            arena_used=fit.used_bytes,
            output_offsets=out_offsets,
        )

    def _layers(self, graph: Graph, checkout: TflmCheckout) -> list[LayerInfo]:
        """One LayerInfo per operator: op, output shape, MACs (as the own lowering counts
        them) and the TFLM kernel source that runs it."""
        kernels = self.kernels()
        where = _kernel_files(str(checkout.root), kernels)
        defaults = _default_registrations(str(checkout.root))
        layers = []
        for op in graph.operators:
            try:
                ctx = LowerContext(tensor_ref=lambda i: "0", prefix=f"l{op.index}",
                                   scratch=lambda n: "0")  # fmt: skip
                macs = int(lower(graph, op, ctx).macs)
            except Exception:
                macs = 0
            shape = tuple(graph.tensor(op.outputs[0]).shape) if op.outputs else ()
            kernel = where.get(defaults.get(op.op, op.op), "")
            layers.append(LayerInfo(op.index, op.op, shape, macs, kernel))
        return layers


#: Ops whose TFLM int8/int16 kernel keeps the input's quantization where TFLite requantizes to
#: the output's, and where TFLM says so: TFLM's result differs from TFLite's whenever the two
#: quantizations differ, and nothing on the device would report it.
KEEPS_INPUT_QUANTIZATION = {
    "RELU6": "tensorflow/lite/micro/kernels/activations_common.cc (Relu6Prepare: zero and six "
    "from the input's scale and zero point; no output rescale)",
}


def check_semantics(graph: Graph, model_name: str) -> None:
    """UnsupportedOpError for an op TFLM would run, but not as TFLite does: a silent
    difference from the reference is refused up front, saying which layer and why."""
    for op in graph.operators:
        where = KEEPS_INPUT_QUANTIZATION.get(op.op)
        if where is None or not op.inputs or not op.outputs:
            continue
        q_in, q_out = graph.tensor(op.inputs[0]).quant, graph.tensor(op.outputs[0]).quant
        if q_in is None or q_out is None:
            continue
        same_zp = q_in.zero_point[0] == q_out.zero_point[0]
        same_scale = abs(q_in.scale[0] - q_out.scale[0]) <= 1e-6 * abs(q_out.scale[0])
        if same_zp and same_scale:
            continue
        raise UnsupportedOpError(
            f"model {model_name!r}: layer {op.index} ({op.op}) has input quantization "
            f"(scale {q_in.scale[0]:.6g}, zero point {q_in.zero_point[0]}) and output "
            f"quantization (scale {q_out.scale[0]:.6g}, zero point {q_out.zero_point[0]}); "
            f"TFLM's {op.op} keeps the input's ({where}), so its outputs would differ from "
            "TFLite's. Use another backend (own, cmsis-nn), or a model whose "
            f"{op.op} keeps its input's quantization."
        )


@functools.lru_cache(maxsize=4)
def _checkout(root: str) -> TflmCheckout:
    del root  # the cache key: TflmCheckout.from_env reads the same variable
    return TflmCheckout.from_env()


@functools.lru_cache(maxsize=8)
def _kernel_files(root: str, kernels: str) -> dict[str, str]:
    """{registration name (CONV_2D): kernel source relative to tensorflow/lite/micro}."""
    checkout = _checkout(root)
    sources = checkout.sources(CMSIS_NN if kernels == CMSIS_NN else None)
    micro = Path(root) / "tensorflow" / "lite" / "micro"
    found: dict[str, str] = {}
    for f in sources.kernels:
        for name in _REGISTER_DEF.findall(f.read_text(errors="replace")):
            found.setdefault(name, f.relative_to(micro).as_posix())
    return found


@functools.lru_cache(maxsize=4)
def _default_registrations(root: str) -> dict[str, str]:
    """{op: the Register_X its AddX method uses by default} from the resolver header."""
    from .resolver import _METHOD, HEADER

    text = (Path(root) / HEADER).read_text(errors="replace")
    table = resolver_table(Path(root))
    by_method = {m: op for op, m in table.items()}
    out: dict[str, str] = {}
    methods = list(_METHOD.finditer(text))
    for i, m in enumerate(methods):
        op = by_method.get(m.group(1))
        if op is None:
            continue
        end = methods[i + 1].start() if i + 1 < len(methods) else len(text)
        reg = _DEFAULT_REG.search(text, m.end(), end)
        if reg:
            out[op] = reg.group(1)
    return out


class _Common:
    """What the probe and the final project share; `render` writes one of them."""

    def __init__(
        self,
        *,
        graph: Graph,
        model_name: str,
        calls: list[str],
        layers: list[LayerInfo],
        backend: TflmBackend,
        board: Board,
        libraries: tuple[Library, ...],
        preserve_all: bool = False,
    ) -> None:
        self.preserve_all = preserve_all
        self.graph = graph
        self.model_name = model_name
        self.calls = calls
        self.layers = layers
        self.backend = backend
        self.board = board
        self.libraries = libraries
        assert graph.flatbuffer is not None
        self.flatbuffer = graph.flatbuffer
        self.sha256 = hashlib.sha256(self.flatbuffer).hexdigest()

    def _kept_tensors(self) -> list[int]:
        """--layers-diff: every operator output that is not a graph output, in operator order
        (what the own backend exposes too)."""
        if not self.preserve_all:
            return []
        seen = set(self.graph.outputs)
        kept = []
        for op in self.graph.operators:
            for t in op.outputs:
                if t >= 0 and t not in seen and self.graph.tensor(t).dtype in C_TYPES:
                    seen.add(t)
                    kept.append(t)
        return kept

    def _io(self, index: int, offset: int) -> IoInfo:
        t = self.graph.tensor(index)
        if t.is_constant:
            raise ModelError(
                f"graph input/output {t.name!r} is a constant; the bench cannot feed it"
            )
        if t.dtype not in C_TYPES:
            raise ModelError(f"graph input/output {t.name!r} has unsupported type {t.dtype}")
        scale = zp = None
        if t.quant is not None and not t.quant.per_channel:
            scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
        return IoInfo(index, t.name, tuple(t.shape), t.dtype, offset, t.nbytes, scale, zp)

    def render(
        self,
        out: Path,
        *,
        probe: bool,
        arena_bytes: int,
        arena_used: int | None = None,
        output_offsets: tuple[int, ...] | None = None,
    ) -> GeneratedProject:
        graph = self.graph
        # Inputs live in buffers of their own (offset -1: not in the arena).
        inputs = [self._io(i, -1) for i in graph.inputs]
        kept = self._kept_tensors()
        offsets = output_offsets or tuple(-1 for _ in [*graph.outputs, *kept])
        outputs = [self._io(i, o) for i, o in zip(graph.outputs, offsets, strict=False)]
        debug = [self._io(i, o) for i, o in zip(kept, offsets[len(graph.outputs) :], strict=True)]
        if len(outputs) + len(debug) > 255:
            raise ModelError(
                f"model {self.model_name!r} has {len(outputs) + len(debug)} tensors to read "
                "back; the device protocol lists at most 255 outputs (profile without "
                "--layers-diff)"
            )

        def io_ctx(io: IoInfo) -> dict[str, object]:
            return {
                "bytes": io.bytes,
                "dtype": C_TYPES[io.dtype][1],
                "tflite_type": TFLITE_TYPES[io.dtype],
                "name": codegen._comment(io.name),
                "offset": io.offset,
                "tensor": io.tensor,
            }

        env = codegen.environment()
        macs = sum(layer.macs for layer in self.layers)
        source = env.get_template("tflm/model.cc.j2").render(
            probe=probe,
            model_sha256=self.sha256,
            num_layers=len(graph.operators),
            ops=model_ops(graph),
            macs=macs,
            kernels=self.backend.kernels(),
            arena_bytes=arena_bytes,
            inputs=[io_ctx(io) for io in inputs],
            outputs=[io_ctx(io) for io in outputs],
            debug=[io_ctx(io) for io in debug],
            resolver_calls=self.calls,
            # Only the probe's log is read back: the final image keeps RAM for a few bytes.
            message_bytes=arena_mod.MESSAGE_BYTES if probe else 4,
            id_line=codegen._ID_PLACEHOLDER,
        )
        source, model_id = codegen.stamp_model_id(source)
        n, body, _ = codegen.format_array(np.frombuffer(self.flatbuffer, np.uint8), "uint8_t")
        data = env.get_template("tflm/model_data.c.j2").render(
            model_bytes=n, model_sha256=self.sha256, body=body
        )
        out.mkdir(parents=True, exist_ok=True)
        src = out / "model.cc"
        codegen.write_if_changed(src, source)
        codegen.write_if_changed(out / "model_data.c", data)
        board = self.board
        project = GeneratedProject(
            out_dir=out,
            source=src,
            metadata=out / "model.json",
            model_id=model_id,
            arena_bytes=arena_bytes,
            macs=macs,
            params=sum(t.size for t in graph.tensors if t.is_constant and t.quant is not None),
            const_bytes=len(self.flatbuffer),
            layers=list(self.layers),
            inputs=inputs,
            outputs=outputs,
            backend=self.backend.name,
            backend_version=self.backend.version(),
            backend_flags=self.backend.flags(board),
            numerics=self.backend.numerics(board),
            libraries=self.libraries,
            debug_tensors=debug,
            arena_used_bytes=arena_used,
        )
        codegen.write_metadata(project)
        return project
