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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from hil.errors import ModelError
from hil.graph import Graph, Tensor, shape_text
from hil.lowering import lower
from hil.lowering.base import CArray, LowerContext
from hil.planner import ArenaPlan

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


@dataclass(frozen=True)
class LayerInfo:
    """What the host knows about one generated layer (mirrors model.json)."""

    index: int
    op: str
    output_shape: tuple[int, ...]
    macs: int


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
    """Paths and facts of one generated model project."""

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
    t: Tensor = graph.tensor(index)
    if t.is_constant:
        raise ModelError(f"graph input/output {t.name!r} is a constant; the bench cannot feed it")
    if t.dtype not in C_TYPES:
        raise ModelError(f"graph input/output {t.name!r} has unsupported type {t.dtype}")
    scale = zp = None
    if t.quant is not None and not t.quant.per_channel:
        scale, zp = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    return IoInfo(index, t.name, tuple(t.shape), t.dtype, plan.offsets[index], t.nbytes, scale, zp)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def generate(
    graph: Graph, plan: ArenaPlan, out_dir: str | Path, *, model_name: str
) -> GeneratedProject:
    """Write out_dir/model.c and out_dir/model.json for `graph` laid out by `plan`.

    Raises UnsupportedOpError (from the lowering) for an op without a kernel and ModelError
    for a graph the device cannot run (no operators, constant I/O, unknown I/O types).
    """
    if not graph.operators:
        raise ModelError(f"model {model_name!r} has no operators: nothing to profile")
    if not graph.inputs or not graph.outputs:
        raise ModelError(f"model {model_name!r} needs at least one input and one output")
    out = Path(out_dir)

    arrays: list[dict[str, object]] = []
    names: set[str] = set()
    needs_math = False
    raw_constants: dict[int, str] = {}

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
        if index not in plan.offsets:
            raise ValueError(f"tensor {index} ({t.name}) has no place in the arena plan")
        return f"(({ctype} *)(hil_arena + {plan.offsets[index]}))"

    layers: list[LayerInfo] = []
    layer_ctx: list[dict[str, object]] = []
    for op in graph.operators:
        lowered = lower(graph, op, LowerContext(tensor_ref=tensor_ref, prefix=f"l{op.index}"))
        for arr in lowered.constants:
            add_array(arr)
        shape = tuple(graph.tensor(op.outputs[0]).shape) if op.outputs else ()
        layers.append(LayerInfo(op.index, op.op, shape, int(lowered.macs)))
        body = "\n".join(
            "    " + line if line.strip() else "" for line in lowered.call.splitlines()
        )
        layer_ctx.append(
            {
                "index": op.index,
                "op": op.op,
                "shape": shape_text(shape),
                "macs": int(lowered.macs),
                "call": body,
            }
        )

    inputs = [_io(graph, plan, i) for i in graph.inputs]
    outputs = [_io(graph, plan, i) for i in graph.outputs]
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

    source = (
        _environment()
        .get_template("model.c.j2")
        .render(
            num_layers=len(layers),
            macs=macs,
            params=params,
            arena_bytes=plan.arena_bytes,
            arena_storage=max(plan.arena_bytes, 1),
            arena_alignment=plan.alignment,
            const_alignment=CONST_ALIGNMENT,
            needs_math=needs_math,
            arrays=arrays,
            layers=layer_ctx,
            inputs=[io_ctx(io) for io in inputs],
            outputs=[io_ctx(io) for io in outputs],
            id_line=_ID_PLACEHOLDER,
        )
    )
    # The id hashes the source with the id line still a placeholder: it names the source.
    model_id = int.from_bytes(hashlib.sha256(source.encode()).digest()[:4], "little")
    source = source.replace(_ID_PLACEHOLDER, f"const uint32_t hil_model_id = 0x{model_id:08x}u;")

    out.mkdir(parents=True, exist_ok=True)
    src_path = out / "model.c"
    meta_path = out / "model.json"
    _write_if_changed(src_path, source)
    # No model name here: the build cache hashes this folder, and the same model under another
    # file name must still be a cache hit.
    meta = {
        "model_id": model_id,
        "arena_bytes": plan.arena_bytes,
        "macs": macs,
        "params": params,
        "const_bytes": const_bytes,
        "layers": [asdict(layer) for layer in layers],
        "inputs": [asdict(io) for io in inputs],
        "outputs": [asdict(io) for io in outputs],
    }
    _write_if_changed(meta_path, json.dumps(meta, indent=1) + "\n")
    return GeneratedProject(
        out_dir=out,
        source=src_path,
        metadata=meta_path,
        model_id=model_id,
        arena_bytes=plan.arena_bytes,
        macs=macs,
        params=params,
        const_bytes=const_bytes,
        layers=layers,
        inputs=inputs,
        outputs=outputs,
    )


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an identical file untouched so build tools that look at mtimes see no change.

    A changed file is written beside and renamed into place, so a concurrent run generating
    the same model (parallel checks or search workers share the cache) never reads half a file.
    """
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
