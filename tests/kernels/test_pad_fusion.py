"""PAD fused into the next convolution (hil/lowering/fuse.py): same outputs, no padded copy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from support.native import compile_graph

import hil
from hil.importer import load_tflite
from hil.lowering.fuse import FUSED_PAD, fuse_pads
from hil.planner import plan


def test_a_spatial_pad_before_a_conv_disappears_into_its_padding(
    zoo_model: Callable[[str], Path], tmp_path: Path
) -> None:
    path = zoo_model("zeropad")  # conv 1x1, ZeroPadding2D(((1, 2), (2, 1))), conv 3x3 VALID
    graph = load_tflite(path)
    fused = fuse_pads(graph)
    assert [op.op for op in graph.operators] == ["CONV_2D", "PAD", "CONV_2D"]
    assert [op.op for op in fused.operators] == ["CONV_2D", "CONV_2D"]
    assert [op.index for op in fused.operators] == [0, 1]
    conv = fused.operators[1]
    assert conv.inputs[0] == graph.operators[0].outputs[0]
    assert conv.options[FUSED_PAD] == (1, 2, 2, 1)  # rows, columns before; rows, columns after
    assert plan(fused).arena_bytes < plan(graph).arena_bytes  # no padded copy

    # The fused graph, run natively, gives the reference interpreter's outputs bit for bit.
    native = compile_graph(fused, tmp_path)
    interp = Interpreter(str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.integers(-128, 128, inp["shape"], dtype=np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        np.testing.assert_array_equal(native.run([x])[0], interp.get_tensor(out["index"]))


def test_pads_that_are_not_a_convs_stay(zoo_model: Callable[[str], Path]) -> None:
    graph = load_tflite(zoo_model("zeropad"))
    pad, conv = graph.operators[1], graph.operators[2]
    # Read by a second op: the padded tensor is needed as such.
    twice = replace(graph, operators=[*graph.operators, replace(conv, index=3)])
    assert [op.op for op in fuse_pads(twice).operators] == ["CONV_2D", "PAD", "CONV_2D", "CONV_2D"]
    # Padding channels: not a conv's padding.
    pads = graph.tensor(pad.inputs[1])
    channel = np.array([[0, 0], [1, 2], [2, 1], [0, 3]], dtype=pads.data.dtype)
    tensors = list(graph.tensors)
    tensors[pad.inputs[1]] = replace(pads, data=channel)
    assert fuse_pads(replace(graph, tensors=tensors)).operators == graph.operators


@pytest.mark.qemu
def test_profile_runs_the_fused_model_on_both_cores(zoo_model: Callable[[str], Path]) -> None:
    path = zoo_model("zeropad")
    for board in ("qemu-m4", "qemu-m0"):
        r = hil.profile(path, board, runs=1, warmup=0, progress=False)
        assert r.outputs_match and r.max_abs_diff == 0
        assert [layer.op for layer in r.layers] == ["CONV_2D", "CONV_2D"]
