"""Run a graph's lowered kernel calls natively (host gcc + ctypes), no firmware or QEMU.

This checks the lowering and the C kernels against the reference interpreter in
milliseconds: each operator is lowered exactly as the code generator would, the calls are
placed in one C function over a simple arena (every activation its own slot, no reuse), and
the result is loaded as a shared library. Kernels are compiled once per process into a static
archive keyed by the hash of their sources.

    model = compile_graph(graph, tmp_path)
    outputs = model.run([input_array])      # one array per graph input, graph.outputs order
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hil.graph import Graph
from hil.lowering import lower
from hil.lowering.base import CArray, LowerContext

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "firmware" / "kernels"
CFLAGS = ["-std=c99", "-O1", "-fPIC", "-Wall", "-Wextra", f"-I{KERNELS}"]
C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "float32": "float",
}
ALIGN = 16


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")


def kernel_archive() -> Path:
    """libhilkernels.a for the host, rebuilt only when a kernel source or header changes."""
    sources = sorted(KERNELS.glob("*.c"))
    digest = hashlib.sha256()
    for f in [*sources, *sorted(KERNELS.glob("*.h"))]:
        digest.update(f.name.encode() + f.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    out = Path(tempfile.gettempdir()) / f"hil-native-{digest.hexdigest()[:16]}" / "libhilkernels.a"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=out.parent))
    objects = []
    for src in sources:
        obj = build / (src.stem + ".o")
        _run(["gcc", *CFLAGS, "-c", str(src), "-o", str(obj)])
        objects.append(str(obj))
    tmp = build / "libhilkernels.a"
    _run(["ar", "rcs", str(tmp), *objects])
    os.replace(tmp, out)  # atomic: concurrent test processes never see half an archive
    return out


def c_array(arr: CArray) -> str:
    """A `static const` C definition; floats as hex literals so they round-trip exactly."""
    flat = np.asarray(arr.data).ravel()
    if arr.ctype == "float":
        items = [float(np.float32(v)).hex() + "f" for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + 16]) for i in range(0, len(items), 16)] or ["0"]
    body = ",\n    ".join(lines)
    return f"static const {arr.ctype} {arr.name}[{max(len(items), 1)}] = {{\n    {body}\n}};"


class NativeModel:
    """A graph compiled for the host: `run(inputs)` returns the graph's outputs."""

    def __init__(self, graph: Graph, lib_path: Path, offsets: dict[int, int], arena: int) -> None:
        self.graph = graph
        self.offsets = offsets
        self._lib = ctypes.CDLL(str(lib_path))
        self._lib.hil_native_run.restype = None
        self._arena = (ctypes.c_uint8 * arena).in_dll(self._lib, "hil_native_arena")

    def _view(self, index: int) -> np.ndarray:
        t = self.graph.tensor(index)
        raw = np.frombuffer(self._arena, dtype=np.uint8, count=t.nbytes, offset=self.offsets[index])
        return raw.view(np.dtype(t.dtype)).reshape(t.shape)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self.graph.inputs):
            raise ValueError(f"expected {len(self.graph.inputs)} inputs, got {len(inputs)}")
        for index, data in zip(self.graph.inputs, inputs, strict=True):
            view = self._view(index)
            view[...] = np.asarray(data, dtype=view.dtype).reshape(view.shape)
        self._lib.hil_native_run()
        return [self._view(i).copy() for i in self.graph.outputs]


def compile_graph(graph: Graph, workdir: Path) -> NativeModel:
    """Lower every operator of `graph` and build the calls into a shared library in `workdir`."""
    offsets: dict[int, int] = {}
    arena = 0
    for t in graph.activations():
        offsets[t.index] = arena
        arena += -(-max(t.nbytes, 1) // ALIGN) * ALIGN
    arrays: list[str] = []

    def tensor_ref(index: int) -> str:
        t = graph.tensor(index)
        ctype = C_TYPES[t.dtype]
        if t.is_constant:
            name = f"hil_c{index}"
            arrays.append(c_array(CArray(name, ctype, np.asarray(t.data))))
            return f"(({ctype} const *){name})"
        return f"(({ctype} *)(hil_native_arena + {offsets[index]}))"

    calls = []
    for op in graph.operators:
        lowered = lower(graph, op, LowerContext(tensor_ref=tensor_ref, prefix=f"l{op.index}"))
        arrays.extend(c_array(a) for a in lowered.constants)
        calls.append(
            f"    /* {op.index}: {op.op} */\n    {{\n        "
            + lowered.call.replace("\n", "\n        ")
            + "\n    }"
        )
    source = "\n".join(
        [
            "#include <stddef.h>",
            "#include <stdint.h>",
            '#include "hil_kernels.h"',
            f"uint8_t hil_native_arena[{max(arena, 1)}] __attribute__((aligned({ALIGN})));",
            *sorted(set(arrays)),
            "void hil_native_run(void)\n{",
            *calls,
            "}",
            "",
        ]
    )
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{graph.name}_native.c"
    src.write_text(source)
    lib = workdir / f"lib{graph.name}_native.so"
    _run(["gcc", *CFLAGS, "-shared", str(src), str(kernel_archive()), "-o", str(lib), "-lm"])
    return NativeModel(graph, lib, offsets, max(arena, 1))
