"""Code generator: deterministic, compilable C whose constants are const and land in flash."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from hil import codegen
from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering import registry
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.planner import plan

REPO = Path(__file__).resolve().parents[2]
INCLUDES = [f"-I{REPO / 'firmware' / 'runtime'}", f"-I{REPO / 'firmware' / 'kernels'}"]
Q = Quantization((0.05,), (-3,))


def _scale_lowering(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """A self-contained test op: out[i] = in[i] * w[i % n] (int8 weights, int32 accumulate)."""
    src, weights = op.inputs
    out = op.outputs[0]
    n = graph.tensor(out).size
    w = graph.tensor(weights).data
    call = (
        f"const int8_t *in = {ctx.tensor_ref(src)};\n"
        f"int8_t *out = {ctx.tensor_ref(out)};\n"
        f"for (uint32_t i = 0; i < {n}u; ++i) {{\n"
        f"    int32_t acc = (int32_t)in[i] * {ctx.prefix}_w[i % {w.size}u] + {ctx.prefix}_b[0];\n"
        f"    out[i] = (int8_t)(acc > 127 ? 127 : (acc < -128 ? -128 : acc));\n"
        f"}}"
    )
    consts = [
        CArray(f"{ctx.prefix}_w", "int8_t", w),
        CArray(f"{ctx.prefix}_b", "int32_t", np.array([7, -(2**31)], np.int32)),
    ]
    return LoweredOp(call=call, constants=consts, macs=n)


@pytest.fixture
def scale_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._LOWERINGS, "HIL_TEST_SCALE", _scale_lowering)


def _graph(n_weights: int = 64, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, n_weights, dtype=np.int8)
    tensors = [
        Tensor(0, "in*/put", (1, 64), "int8", Q),
        Tensor(1, "w1", (n_weights,), "int8", Q, w),
        Tensor(2, "mid", (1, 64), "int8", Q),
        Tensor(3, "w2", (n_weights,), "int8", Q, w[::-1].copy()),
        Tensor(4, "out", (1, 64), "int8", Q),
    ]
    ops = [
        Operator(0, "HIL_TEST_SCALE", [0, 1], [2]),
        Operator(1, "HIL_TEST_SCALE", [2, 3], [4]),
    ]
    return Graph("test", tensors, ops, inputs=[0], outputs=[4])


def test_output_is_deterministic_and_the_id_names_the_source(
    scale_op: None, tmp_path: Path
) -> None:
    g = _graph()
    a = codegen.generate(g, plan(g), tmp_path / "a", model_name="a")
    b = codegen.generate(_graph(), plan(g), tmp_path / "b", model_name="b")
    assert a.source.read_bytes() == b.source.read_bytes()
    assert a.model_id == b.model_id
    assert f"0x{a.model_id:08x}u" in a.source.read_text()

    changed = _graph(seed=1)
    c = codegen.generate(changed, plan(changed), tmp_path / "c", model_name="a")
    assert c.model_id != a.model_id


def test_metadata_describes_layers_and_io(scale_op: None, tmp_path: Path) -> None:
    import json

    g = _graph()
    p = plan(g)
    gen = codegen.generate(g, p, tmp_path, model_name="m")
    meta = json.loads(gen.metadata.read_text())
    assert meta["model_id"] == gen.model_id
    assert [(la["op"], la["output_shape"], la["macs"]) for la in meta["layers"]] == [
        ("HIL_TEST_SCALE", [1, 64], 64)
    ] * 2
    assert meta["macs"] == gen.macs == 128
    assert meta["params"] == gen.params == 128
    assert meta["inputs"][0]["offset"] == p.offsets[0]
    assert meta["outputs"][0]["zero_point"] == -3
    assert meta["arena_bytes"] == p.arena_bytes


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_source_compiles_and_constants_are_const(scale_op: None, tmp_path: Path) -> None:
    g = _graph()
    gen = codegen.generate(g, plan(g), tmp_path, model_name="m")
    text = gen.source.read_text()
    assert "static const int8_t l0_w[64]" in text
    assert "(-0x7fffffff - 1)" in text  # INT32_MIN spelled without an unsigned literal
    obj = tmp_path / "model.o"
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", *INCLUDES, "-o", obj, gen.source],
        check=True,
    )
    # Constants go to a read-only section; only the arena is writable (.bss).
    sections = subprocess.run(
        ["objdump", "-t", obj], check=True, capture_output=True, text=True
    ).stdout
    syms = {line.split()[-1]: line for line in sections.splitlines() if line.strip()}
    assert ".rodata" in syms["l0_w"] and ".rodata" in syms["l1_b"]
    assert ".bss" in syms["hil_arena"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc not installed")
def test_generated_model_runs_natively(scale_op: None, tmp_path: Path) -> None:
    """Link the model with a tiny host harness: it must compute the same as numpy."""
    g = _graph(n_weights=8)
    gen = codegen.generate(g, plan(g), tmp_path, model_name="m")
    harness = tmp_path / "main.c"
    harness.write_text(
        '#include <stdio.h>\n#include "hil_model.h"\n'
        "int main(void) {\n"
        "  int8_t *in = hil_model_inputs[0].data;\n"
        "  for (int i = 0; i < 64; ++i) in[i] = (int8_t)(i - 32);\n"
        "  for (uint32_t l = 0; l < hil_model_num_layers; ++l) hil_model_layers[l]();\n"
        "  const int8_t *out = hil_model_outputs[0].data;\n"
        '  for (int i = 0; i < 64; ++i) printf("%d ", out[i]);\n'
        "  return 0;\n}\n"
    )
    exe = tmp_path / "model"
    subprocess.run(["gcc", "-std=c99", *INCLUDES, "-o", exe, gen.source, harness], check=True)
    got = np.array(subprocess.run([exe], capture_output=True, text=True).stdout.split(), int)

    x = np.arange(64) - 32
    b = 7
    for t in (1, 3):
        w = g.tensor(t).data.astype(np.int64)
        x = np.clip(x * w[np.arange(64) % 8] + b, -128, 127)
    np.testing.assert_array_equal(got, x)


def test_a_megabyte_of_weights_generates_fast(scale_op: None, tmp_path: Path) -> None:
    g = _graph(n_weights=1 << 20)
    start = time.perf_counter()
    gen = codegen.generate(g, plan(g), tmp_path, model_name="big")
    assert time.perf_counter() - start < 3.0
    assert gen.const_bytes >= 2 << 20
    longest = max(len(line) for line in gen.source.read_text().splitlines())
    assert longest <= 100


def test_format_array_is_exact_for_every_type() -> None:
    n, body, needs_math = codegen.format_array(np.array([-128, 0, 127], np.int8), "int8_t")
    assert (n, body, needs_math) == (3, "-0x80,0x0,0x7f", False)
    n, body, needs_math = codegen.format_array(np.array([0.1, np.inf], np.float32), "float")
    assert float.fromhex(body.split(",")[0].rstrip("f")) == float(np.float32(0.1))
    assert needs_math and "INFINITY" in body
    with pytest.raises(ValueError, match="does not fit"):
        codegen.format_array(np.array([300]), "int8_t")


def test_unsupported_and_degenerate_graphs_raise_clear_errors(tmp_path: Path) -> None:
    g = Graph(
        "g",
        [Tensor(0, "x", (1,), "int8", Q), Tensor(1, "y", (1,), "int8", Q)],
        [Operator(0, "NO_SUCH_OP", [0], [1])],
        [0],
        [1],
    )
    with pytest.raises(UnsupportedOpError, match="NO_SUCH_OP"):
        codegen.generate(g, plan(g), tmp_path, model_name="g")
    empty = Graph("e", [Tensor(0, "x", (1,), "int8", Q)], [], [0], [0])
    with pytest.raises(ModelError, match="no operators"):
        codegen.generate(empty, plan(empty), tmp_path, model_name="e")
