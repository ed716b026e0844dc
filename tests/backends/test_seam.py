"""The backend seam without any checkout: scratch planning, lowering before planning, the
registry and its errors, the version check of a checkout, and `--backend all`'s table."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

import hil
from hil import cli, codegen
from hil.backends import BACKEND_NAMES, BackendUnavailable, get_backend
from hil.backends.compare import compare_backends
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering import registry
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.planner import plan
from hil.report import LayerReport, Report

Q = Quantization((0.05,), (0,))


def _act(i: int, n: int) -> Tensor:
    return Tensor(i, f"t{i}", (1, n), "int8", Q)


def _chain(sizes: list[int], op: str = "RELU") -> Graph:
    tensors = [_act(i, n) for i, n in enumerate(sizes)]
    ops = [Operator(k, op, [k], [k + 1]) for k in range(len(sizes) - 1)]
    return Graph("chain", tensors, ops, inputs=[0], outputs=[len(sizes) - 1])


@pytest.mark.parametrize("seed", range(60))
def test_scratch_lives_only_for_its_operator_and_overlaps_nothing_live(seed: int) -> None:
    rng = random.Random(seed)
    g = _chain([rng.randint(1, 400) for _ in range(rng.randint(2, 12))])
    scratch = {k: rng.choice([0, 1, 17, 300, 1000]) for k in range(len(g.operators))}
    p = plan(g, scratch=scratch)
    assert p.conflicts() == []
    assert p.scratch_sizes == {k: v for k, v in scratch.items() if v}
    # Independent check: a scratch buffer never touches the bytes of its op's inputs/outputs
    # (nor anything else alive then); it may reuse bytes of tensors dead at its operator.
    for k, off in p.scratch_offsets.items():
        assert off % p.alignment == 0 and off + p.scratch_sizes[k] <= p.arena_bytes
        for t, (first, last) in p.lifetimes.items():
            if first <= k <= last:
                a, n = p.offsets[t], g.tensor(t).nbytes
                assert off + p.scratch_sizes[k] <= a or a + n <= off, (k, t)


def test_scratch_reuses_dead_bytes_instead_of_growing_the_arena() -> None:
    g = _chain([16, 1000, 1000, 16, 16], op="SOFTMAX")  # never in place, unlike RELU
    base = plan(g).arena_bytes
    # At op 3 the two big tensors are dead: a 1 KiB scratch fits in their bytes (give or take
    # the greedy placement's alignment); at op 1 both are live, so it comes on top.
    assert plan(g, scratch={3: 1024}).arena_bytes <= base + 16
    assert plan(g, scratch={1: 1024}).arena_bytes >= base + 1024
    with pytest.raises(ValueError, match="operator 9"):
        plan(g, scratch={9: 4})


def test_preserve_all_gives_every_tensor_its_own_bytes_to_the_end() -> None:
    g = _chain([100, 50, 50, 30])
    p = plan(g, preserve_all=True)
    assert p.conflicts() == [] and not p.aliases
    spans = sorted((p.offsets[t], p.offsets[t] + g.tensor(t).nbytes) for t in p.offsets)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert all(last == len(g.operators) for _, last in p.lifetimes.values())


def _scratch_lowering(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """A test op that asks for a scratch buffer as big as its output."""
    out = op.outputs[0]
    n = graph.tensor(out).size
    buf = ctx.scratch(n)
    return LoweredOp(
        call=f"hil_test_kernel({ctx.tensor_ref(op.inputs[0])}, {buf}, {ctx.tensor_ref(out)}, {n});",
        constants=[CArray(f"{ctx.prefix}_k", "int8_t", np.arange(3, dtype=np.int8))],
        macs=n,
    )


def test_codegen_plans_after_lowering_with_the_scratch_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(registry._LOWERINGS, "RELU", _scratch_lowering)
    g = _chain([64, 48, 32])
    gen = codegen.generate(g, None, tmp_path, model_name="m")
    p = plan(g, scratch={0: 48, 1: 32})
    text = gen.source.read_text()
    assert "@" not in text  # every placeholder resolved
    assert f"((void *)(hil_arena + {p.scratch_offsets[0]}))" in text
    assert f"((int8_t *)(hil_arena + {p.offsets[2]}))" in text
    assert gen.arena_bytes == p.arena_bytes and gen.scratch_bytes == 80
    assert [layer.kernel for layer in gen.layers] == ["hil_test_kernel"] * 2
    meta = json.loads(gen.metadata.read_text())
    assert meta["backend"] == "own" and meta["scratch_bytes"] == 80
    with pytest.raises(ValueError, match="asks for scratch"):
        codegen.generate(g, plan(g), tmp_path / "given", model_name="m")


def test_preserve_all_exposes_every_intermediate_tensor_as_an_extra_output(
    tmp_path: Path,
) -> None:
    g = _chain([8, 8, 8, 8])
    gen = codegen.generate(g, None, tmp_path, model_name="m", preserve_all=True)
    assert [io.tensor for io in gen.outputs] == [3]
    assert [io.tensor for io in gen.debug_tensors] == [1, 2]
    assert "hil_model_num_outputs = 3u" in gen.source.read_text()


def test_registry_knows_every_backend_and_refuses_unknown_ones() -> None:
    assert BACKEND_NAMES[:2] == ("own", "cmsis-nn") and "tflm" in BACKEND_NAMES
    own = get_backend("own")
    assert own.unavailable() is None and "CONV_2D" in own.supported_ops()
    with pytest.raises(BackendUnavailable, match=r"unknown backend 'nope'.*own, cmsis-nn"):
        get_backend("nope")


def test_a_missing_checkout_is_a_clear_error_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CMSIS_NN_ROOT", raising=False)
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(BackendUnavailable, match="CMSIS_NN_ROOT is not set"):
        hil.profile(tmp_path / "never-read.tflite", "qemu-m4", backend="cmsis-nn", progress=False)
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("CMSIS_NN_ROOT", str(tmp_path / "nowhere"))
    code = cli.main(["profile", str(tmp_path / "m.tflite"), "--backend", "cmsis-nn", "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR and "Traceback" not in err
    assert "nowhere is not a directory" in err


def _fake_checkout(root: Path, drop: str | None = None) -> Path:
    """Headers that declare what the backend needs (minus `drop`), and a Source folder."""
    from hil.backends.cmsis_nn import REQUIRED_SYMBOLS

    inc = root / "Include"
    inc.mkdir(parents=True)
    (root / "Source").mkdir()
    for header in {h for h, _ in REQUIRED_SYMBOLS}:
        names = [s for h, s in REQUIRED_SYMBOLS if h == header and s != drop]
        body = "".join(f"int {s};\n" for s in names)
        (inc / header).write_text(f"/* $Revision:    V.99.0.0 */\n{body}")
    return root


def test_an_unsupported_checkout_version_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = get_backend("cmsis-nn")
    monkeypatch.setenv("CMSIS_NN_ROOT", str(_fake_checkout(tmp_path / "ok")))
    assert backend.unavailable() is None
    assert "V.99.0.0" in backend.version() and backend.version().startswith("tree-")
    old = _fake_checkout(tmp_path / "old", drop="arm_fully_connected_per_channel_s8")
    monkeypatch.setenv("CMSIS_NN_ROOT", str(old))
    reason = backend.unavailable()
    assert reason and "unsupported version" in reason
    assert "arm_fully_connected_per_channel_s8" in reason
    monkeypatch.setenv("CMSIS_NN_ROOT", str(tmp_path))
    assert "does not look like a CMSIS-NN checkout" in (backend.unavailable() or "")


def _report(backend: str, counts: int, diff: float) -> Report:
    layers = [LayerReport(0, "CONV_2D", (1, 4, 4, 8), 1000, counts, f"{backend}_conv", "")]
    return Report(
        board="qemu-m4", model="m", timing_source="qemu-icount", timing_note="", latency_counts=
        counts, latency_ms=counts / 64e3, runs=1, warmup=0, flash_bytes=5000, ram_bytes=3000,
        static_ram_bytes=2500, arena_bytes=1024, stack_bytes=500, macs=1000, params=10,
        outputs_exact_rate=1.0, max_abs_diff=diff, layers=layers, backend=backend,
        numerics={"rounding": "double (x)"},
    )  # fmt: skip


def test_backend_all_gives_one_table_and_json_with_skipped_backends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CMSIS_NN_ROOT", raising=False)
    calls: list[str] = []

    def fake_profile(model: object, board: str, *, backend: str, **kw: object) -> Report:
        calls.append(backend)
        return _report(backend, 5000, 0.0)

    result = compare_backends("m.tflite", "qemu-m4", profile=fake_profile, seed=3)
    assert calls == ["own"]  # cmsis-nn (no checkout) and tflm are skipped, with reasons
    assert "CMSIS_NN_ROOT is not set" in result.skipped["cmsis-nn"]
    d = json.loads(json.dumps(result.to_dict()))
    assert d["backends"]["own"]["backend"] == "own" and "cmsis-nn" in d["skipped"]

    from rich.console import Console

    console = Console(width=200, record=True)
    two = compare_backends(
        "m.tflite", "qemu-m4", ["own", "own"], profile=fake_profile
    )  # same name twice: one column
    console.print(two.render())
    text = console.export_text()
    assert "instructions/MAC" in text and "5.00" in text and "own_conv" in text


_CXX_MODEL = """
#include "hil_model.h"
static uint8_t arena[16] __attribute__((aligned(16)));
struct Scale {
    explicit Scale(int k_) : k(k_) {}
    virtual int apply(int x) const { return x * k; }
    int k;
};
static void layer0(void) { static const Scale s(2); arena[4] = (uint8_t)s.apply(arena[0]); }
extern "C" {
const hil_io_t hil_model_inputs[] = {{arena, 4u, HIL_DTYPE_INT8}};
const uint32_t hil_model_num_inputs = 1u;
const hil_io_t hil_model_outputs[] = {{arena + 4, 4u, HIL_DTYPE_INT8}};
const uint32_t hil_model_num_outputs = 1u;
const hil_layer_fn hil_model_layers[] = {layer0};
const uint32_t hil_model_num_layers = 1u;
const uint32_t hil_model_arena_bytes = 16u;
const uint32_t hil_model_id = 0x1234u;
}
"""


def test_a_cxx_model_project_builds_without_exceptions_or_rtti(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a backend like TFLM generates: C++ sources, compiled with arm-none-eabi-g++."""
    import shutil

    from hil.boards import load_board
    from hil.build import build

    if not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-g++")):
        pytest.skip("cmake or arm-none-eabi-g++ not on PATH: run scripts/setup.sh")
    project = tmp_path / "project"
    project.mkdir()
    (project / "model.cc").write_text(_CXX_MODEL)
    result = build(project, load_board("qemu-m4"))
    assert result.elf.is_file()
    assert {"-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics"} <= set(result.compile_flags)
    assert not any(f.endswith(">") for f in result.compile_flags)
