"""`hil profile --layers-diff`: every intermediate tensor read back from QEMU and compared with
LiteRT's, so a wrong layer is named, not just a wrong output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hil import cli
from hil.graph import Graph, Operator
from hil.lowering import registry
from hil.lowering.base import LowerContext, LoweredOp

pytestmark = pytest.mark.qemu

MODEL = "autoencoder"  # six FULLY_CONNECTED layers: quick to build and run


def _corrupting(layer: int, fn: registry.LowerFn) -> registry.LowerFn:
    """The own lowering, plus a flip of bit 6 of the first output byte at operator `layer`."""

    def lower(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
        lowered = fn(graph, op, ctx)
        if op.index == layer:
            lowered.call += f"\n{ctx.tensor_ref(op.outputs[0])}[0] ^= 0x40;"
        return lowered

    return lower


def test_the_first_wrong_layer_is_named(
    zoo_model: Callable[[str], Path],
    qemu_tools: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fc = registry._LOWERINGS["FULLY_CONNECTED"]
    monkeypatch.setitem(registry._LOWERINGS, "FULLY_CONNECTED", _corrupting(2, fc))
    out = tmp_path / "r.json"
    code = cli.main(
        ["profile", str(zoo_model(MODEL)), "--board", "qemu-m0", "--runs", "1",
         "--layers-diff", "--quiet", "--json", str(out)]
    )  # fmt: skip
    assert code == cli.EXIT_MISMATCH
    r = json.loads(out.read_text())
    diff = r["layers_diff"]
    assert diff["reference"] == "litert" and not diff["note"]
    assert [t["layer"] for t in diff["tensors"]] == [layer["index"] for layer in r["layers"]]
    assert diff["first_bad_layer"] == 2
    assert all(t["max_abs_diff"] <= 1 for t in diff["tensors"][:2])  # before it: agree
    bad = [t["layer"] for t in diff["tensors"] if t["max_abs_diff"] > 1]
    assert bad[0] == 2  # later layers inherit the damage; the first one is the culprit
    assert "layer 2 (FULLY_CONNECTED)" in capsys.readouterr().err
