"""Code generator: one Graph + ArenaPlan -> a standalone C source for the device (model.c).

The C file defines what `firmware/runtime/hil_model.h` declares: one function per operator
(its body comes from `hil.lowering.lower`), the I/O descriptors, the arena and the model id.
Constants are `static const` so the linker puts them in flash. Beside it, `model.json` holds
per-layer facts the host needs to read the device's answers (op, output shape, MACs).

The output is a pure function of the graph and the plan (no time stamps, no paths, no model
file name), so an unchanged model gives a byte-identical source and the build cache hits.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
import numpy as np

from hil import planner
from hil.errors import ModelError
from hil.graph import Graph, Operator, Tensor, shape_text
from hil.lowering import lower
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.planner import ArenaPlan

if TYPE_CHECKING:
    from hil.build import Library

LowerFn = Callable[[Graph, Operator, LowerContext], LoweredOp]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "firmware" / "templates"

#: Graph dtype -> (C element type, enum hil_dtype name).
C_TYPES: dict[str, tuple[str, str]] = {
    "int8": ("int8_t", "HIL_DTYPE_INT8"),
    "uint8": ("uint8_t", "HIL_DTYPE_UINT8"),
    "int16": ("int16_t", "HIL_DTYPE_INT16"),
    "int32": ("int32_t", "HIL_DTYPE_INT32"),
    "float32": ("float", "HIL_DTYPE_FLOAT32"),
}

#: C element type -> numpy dtype of its data.
_NP_TYPES: dict[str, np.dtype] = {
    "int8_t": np.dtype(np.int8),
    "uint8_t": np.dtype(np.uint8),
    "int16_t": np.dtype(np.int16),
    "uint16_t": np.dtype(np.uint16),
    "int32_t": np.dtype(np.int32),
    "uint32_t": np.dtype(np.uint32),
    "float": np.dtype(np.float32),
}

#: Alignment of constant arrays: word loads of packed int8 weights (SIMD paths) need 4.
CONST_ALIGNMENT = 4
#: Elements per line of an emitted array (at most 6 characters each: lines stay under 100).
_PER_LINE = 16

_ID_PLACEHOLDER = "const uint32_t hil_model_id = 0x00000000u;"
#: Placeholders a lowering's C carries until the plan exists: tensor k / scratch of operator k.
_REF = re.compile(r"@([TS])(\d+)@")
_KERNEL_CALL = re.compile(r"\b((?:hil|arm)_\w+)\s*\(")


@dataclass(frozen=True)
class LayerInfo:
    """What the host knows about one generated layer (mirrors model.json).

    `kernel` is the function that runs it; `note` why a backend fell back to another kernel
    than its own (empty when it did not)."""

    index: int
    op: str
    output_shape: tuple[int, ...]
    macs: int
    kernel: str = ""
    note: str = ""


@dataclass(frozen=True)
class IoInfo:
    """One graph input or output as the device holds it."""

    tensor: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    bytes: int
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class GeneratedProject:
    """Paths and facts of one generated model project: what build and profile need.

    Every backend returns one (docs/architecture.md, "Backends"). `libraries` are the static
    libraries the backend builds once per board and checkout (hil.build.Library); `numerics`
    the settings that decide rounding; `debug_tensors` the intermediate tensors a
    `--layers-diff` image exposes as extra outputs after `outputs`; `arena_used_bytes` the part
    of the arena a run needed when the backend measured it (else None: all of it).
    """

    out_dir: Path
    source: Path
    metadata: Path
    model_id: int
    arena_bytes: int
    macs: int
    params: int
    const_bytes: int
    layers: list[LayerInfo] = field(default_factory=list)
    inputs: list[IoInfo] = field(default_factory=list)
    outputs: list[IoInfo] = field(default_factory=list)
    backend: str = "own"
    backend_version: str = ""
    backend_flags: tuple[str, ...] = ()
    numerics: dict[str, str] = field(default_factory=dict)
    libraries: tuple[Library, ...] = ()
    debug_tensors: list[IoInfo] = field(default_factory=list)
    arena_used_bytes: int | None = None
    scratch_bytes: int = 0


def format_array(data: np.ndarray, ctype: str) -> tuple[int, str, bool]:
    """C initializer body for `data` as `ctype`: (element count, text, needs <math.h>).

    Integers are hex (`0x7f`, `-0x80`), 16 per line; floats are exact C99 hex-float literals.
    Formatting goes through Python's C-level `hex`/`float.hex` over whole lists, so a
    megabyte of weights takes a fraction of a second.
    """
    if ctype not in _NP_TYPES:
        raise ValueError(f"no C element type {ctype!r}; known: {', '.join(_NP_TYPES)}")
    want = _NP_TYPES[ctype]
    flat = np.asarray(data).ravel()
    if flat.dtype != want:
        cast = flat.astype(want)
        if not np.array_equal(cast.astype(flat.dtype), flat, equal_nan=want.kind == "f"):
            raise ValueError(f"constant data of type {flat.dtype} does not fit {ctype}")
        flat = cast
    values = flat.tolist()
    needs_math = False
    if want.kind == "f":
        tokens = []
        for v in values:
            if math.isfinite(v):
                tokens.append(float.hex(v) + "f")
            else:
                needs_math = True
                tokens.append("NAN" if math.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY"))
    else:
        tokens = list(map(hex, values))
        if want == np.int32:
            # -0x80000000 is unary minus on an unsigned literal in C: spell INT32_MIN safely.
            tokens = [t if t != "-0x80000000" else "(-0x7fffffff - 1)" for t in tokens]
    per_line = _PER_LINE if want.kind != "f" else 4
    rows = [",".join(tokens[i : i + per_line]) for i in range(0, len(tokens), per_line)]
    return len(tokens), ",\n    ".join(rows), needs_math


def _comment(text: str) -> str:
    """Make a tensor name safe inside a C block comment."""
    return re.sub(r"[^\w.:/\-\[\] ]", "_", text).replace("*/", "*_")


def _io(graph: Graph, plan: ArenaPlan, index: int) -> IoInfo:
    """The device-side description of tensor `index` (a graph input/output or, for
    --layers-diff, an intermediate tensor)."""
    t: Tensor = graph.tensor(index)
    if t.is_constant:
        raise ModelError(f"graph input/output {t.name!r} is a constant; the bench cannot feed it")
    if t.dtype not in C_TYPES:
        raise ModelError(f"graph input/output {t.name!r} has unsupported type {t.dtype}")
    scale = zp = None
    if t.quant is not None and not t.quant.per_channel:
        scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    return IoInfo(index, t.name, tuple(t.shape), t.dtype, plan.offsets[index], t.nbytes, scale, zp)


def environment() -> jinja2.Environment:
    """The jinja2 environment of firmware/templates/ (a backend keeps its templates in a
    sub-folder, e.g. `tflm/model.cc.j2`)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def generate(
    graph: Graph,
    plan: ArenaPlan | None,
    out_dir: str | Path,
    *,
    model_name: str,
    lower_fn: LowerFn = lower,
    preserve_all: bool = False,
    headers: Sequence[str] = (),
    backend: str = "own",
    backend_version: str = "",
    backend_flags: Sequence[str] = (),
    numerics: Mapping[str, str] | None = None,
    libraries: Sequence[Library] = (),
) -> GeneratedProject:
    """Write out_dir/model.c and out_dir/model.json for `graph`.

    Each operator is lowered by `lower_fn` (the own kernels by default; a backend passes its
    own, which may fall back to `lower`). With `plan=None` the arena is planned after lowering,
    with the scratch buffers the lowerings asked for; a given plan must not need any.
    `preserve_all` plans every activation apart and exposes every operator's output as an
    extra output after the graph's (`debug_tensors`, for --layers-diff). `headers` are extra
    `#include`s of model.c; the backend fields are recorded in model.json and the project.

    Raises UnsupportedOpError (from the lowering) for an op without a kernel and ModelError
    for a graph the device cannot run (no operators, constant I/O, unknown I/O types).
    """
    if not graph.operators:
        raise ModelError(f"model {model_name!r} has no operators: nothing to profile")
    if not graph.inputs or not graph.outputs:
        raise ModelError(f"model {model_name!r} needs at least one input and one output")
    out = Path(out_dir)
    live = planner.activation_lifetimes(graph)
    aliases = plan.aliases if plan is not None else planner.aliases_for(
        graph, preserve_all=preserve_all
    )

    arrays: list[dict[str, object]] = []
    names: set[str] = set()
    needs_math = False
    raw_constants: dict[int, str] = {}
    scratch: dict[int, int] = {}

    def add_array(arr: CArray) -> None:
        nonlocal needs_math
        if arr.name in names:
            raise ValueError(f"lowering emitted the constant {arr.name!r} twice")
        names.add(arr.name)
        length, body, math_needed = format_array(arr.data, arr.ctype)
        needs_math |= math_needed
        arrays.append(
            {"name": arr.name, "ctype": arr.ctype, "length": max(length, 1), "body": body or "0"}
        )

    def tensor_ref(index: int) -> str:
        t = graph.tensor(index)
        if t.dtype not in C_TYPES:
            raise ModelError(f"tensor {t.name!r} has unsupported type {t.dtype}")
        ctype = C_TYPES[t.dtype][0]
        if t.is_constant:
            # A lowering that wants a constant operand as-is gets it emitted once, unchanged.
            if index not in raw_constants:
                raw_constants[index] = f"hil_c{index}"
                add_array(CArray(raw_constants[index], ctype, np.asarray(t.data)))
            return f"(({ctype} const *){raw_constants[index]})"
        known = plan.offsets if plan is not None else live
        if index not in known:
            raise ValueError(f"tensor {index} ({t.name}) has no place in the arena plan")
        # The offset is filled in once the plan exists; aliases share their root's bytes.
        return f"(({ctype} *)(hil_arena + @T{planner.alias_root(aliases, index)}@))"

    layers: list[LayerInfo] = []
    calls: list[str] = []
    for op in graph.operators:

        def scratch_ref(nbytes: int, k: int = op.index) -> str:
            if nbytes <= 0:
                return "(void *)0"
            if plan is not None:
                raise ValueError(f"operator {k} asks for scratch, but the plan was given")
            scratch[k] = max(scratch.get(k, 0), int(nbytes))
            return f"((void *)(hil_arena + @S{k}@))"

        ctx = LowerContext(tensor_ref=tensor_ref, prefix=f"l{op.index}", scratch=scratch_ref)
        lowered = lower_fn(graph, op, ctx)
        for arr in lowered.constants:
            add_array(arr)
        shape = tuple(graph.tensor(op.outputs[0]).shape) if op.outputs else ()
        kernel = lowered.kernel or _kernel_of(lowered.call)
        layers.append(LayerInfo(op.index, op.op, shape, int(lowered.macs), kernel, lowered.note))
        calls.append(lowered.call)

    if plan is None:
        plan = planner.plan(graph, scratch=scratch, preserve_all=preserve_all)

    def resolve(m: re.Match[str]) -> str:
        table = plan.offsets if m.group(1) == "T" else plan.scratch_offsets
        return str(table[int(m.group(2))])

    layer_ctx: list[dict[str, object]] = []
    for layer, call in zip(layers, calls, strict=True):
        body = "\n".join(
            "    " + line if line.strip() else "" for line in _REF.sub(resolve, call).splitlines()
        )
        layer_ctx.append(
            {
                "index": layer.index,
                "op": layer.op,
                "shape": shape_text(layer.output_shape),
                "macs": layer.macs,
                "call": body,
            }
        )

    inputs = [_io(graph, plan, i) for i in graph.inputs]
    outputs = [_io(graph, plan, i) for i in graph.outputs]
    debug: list[IoInfo] = []
    if preserve_all:
        seen = set(graph.outputs)
        for op in graph.operators:
            for t in op.outputs:
                if t >= 0 and t not in seen and graph.tensor(t).dtype in C_TYPES:
                    seen.add(t)
                    debug.append(_io(graph, plan, t))
    if len(outputs) + len(debug) > 255:
        raise ModelError(
            f"model {model_name!r} has {len(outputs) + len(debug)} tensors to read back; the "
            "device protocol lists at most 255 outputs (profile without --layers-diff)"
        )
    params = sum(t.size for t in graph.tensors if t.is_constant and t.quant is not None)
    macs = sum(layer.macs for layer in layers)
    const_bytes = sum(int(a["length"]) * _NP_TYPES[str(a["ctype"])].itemsize for a in arrays)

    def io_ctx(io: IoInfo) -> dict[str, object]:
        return {
            "offset": io.offset,
            "bytes": io.bytes,
            "dtype": C_TYPES[io.dtype][1],
            "name": _comment(io.name),
        }

    source = environment().get_template("model.c.j2").render(
        num_layers=len(layers),
        macs=macs,
        params=params,
        arena_bytes=plan.arena_bytes,
        arena_storage=max(plan.arena_bytes, 1),
        arena_alignment=plan.alignment,
        const_alignment=CONST_ALIGNMENT,
        needs_math=needs_math,
        headers=list(headers),
        arrays=arrays,
        layers=layer_ctx,
        inputs=[io_ctx(io) for io in inputs],
        outputs=[io_ctx(io) for io in [*outputs, *debug]],
        id_line=_ID_PLACEHOLDER,
    )
    source, model_id = stamp_model_id(source)

    out.mkdir(parents=True, exist_ok=True)
    src_path = out / "model.c"
    write_if_changed(src_path, source)
    project = GeneratedProject(
        out_dir=out,
        source=src_path,
        metadata=out / "model.json",
        model_id=model_id,
        arena_bytes=plan.arena_bytes,
        macs=macs,
        params=params,
        const_bytes=const_bytes,
        layers=layers,
        inputs=inputs,
        outputs=outputs,
        backend=backend,
        backend_version=backend_version,
        backend_flags=tuple(backend_flags),
        numerics=dict(numerics or {}),
        libraries=tuple(libraries),
        debug_tensors=debug,
        scratch_bytes=plan.scratch_bytes,
    )
    write_metadata(project)
    return project


def _kernel_of(call: str) -> str:
    """The first kernel function a layer's C calls (hil_* or arm_*), for the report."""
    m = _KERNEL_CALL.search(call)
    return m.group(1) if m else ""


def stamp_model_id(source: str) -> tuple[str, int]:
    """Replace the id placeholder line (`_ID_PLACEHOLDER`, which a template must contain once)
    with the hash of the source: the id names the source, so the host can tell which image it
    talks to. Returns the stamped source and the id."""
    if source.count(_ID_PLACEHOLDER) != 1:
        raise ValueError("a model template must contain the id placeholder line exactly once")
    # The id hashes the source with the id line still a placeholder: it names the source.
    model_id = int.from_bytes(hashlib.sha256(source.encode()).digest()[:4], "little")
    stamped = source.replace(_ID_PLACEHOLDER, f"const uint32_t hil_model_id = 0x{model_id:08x}u;")
    return stamped, model_id


def write_metadata(project: GeneratedProject) -> None:
    """model.json beside the source: what the host needs to read the device's answers.

    No model name, no paths and no versions here: the build cache hashes this folder, and the
    same model under another file name (or after a commit that left the source unchanged) must
    still be a cache hit. A backend library's version is part of the cache key through
    `hil.build.Library.key`."""
    meta = {
        "model_id": project.model_id,
        "backend": project.backend,
        "backend_flags": list(project.backend_flags),
        "numerics": project.numerics,
        "arena_bytes": project.arena_bytes,
        "scratch_bytes": project.scratch_bytes,
        "macs": project.macs,
        "params": project.params,
        "const_bytes": project.const_bytes,
        "layers": [asdict(layer) for layer in project.layers],
        "inputs": [asdict(io) for io in project.inputs],
        "outputs": [asdict(io) for io in project.outputs],
        "debug_tensors": [asdict(io) for io in project.debug_tensors],
    }
    if project.arena_used_bytes is not None:
        meta["arena_used_bytes"] = project.arena_used_bytes
    write_if_changed(project.metadata, json.dumps(meta, indent=1) + "\n")


def write_if_changed(path: Path, text: str) -> None:
    """Leave an identical file untouched so build tools that look at mtimes see no change.

    A changed file is written beside and renamed into place, so a concurrent run generating
    the same model (parallel checks or search workers share the cache) never reads half a file.
    """
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
