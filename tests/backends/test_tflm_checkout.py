"""The tflm backend without QEMU: what a checkout must hold (each missing piece says which and
what to do), the source rules computed from the checkout, and the resolver that registers
exactly the model's ops.

Tests on fake checkouts run everywhere; those that read the real one skip when TFLM_ROOT is
unset."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from zoo import ZOO

from hil.backends import get_backend
from hil.backends.tflm import TflmBackend, check_semantics
from hil.backends.tflm import arena as tflm_arena
from hil.backends.tflm.checkout import DOWNLOADS, MICRO, REQUIRED_API, THIRD_PARTY
from hil.backends.tflm.resolver import model_ops, parse_resolver, resolver_calls, resolver_table
from hil.boards import load_board
from hil.errors import HilError, ModelError, ModelTooLargeError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.importer import load_tflite

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"
SHARED_MODELS = ["mlperf-tiny-streaming-wakeword.tflite", "mlperf-tiny-toycar-autoencoder.tflite"]

HEADER = """
class MicroMutableOpResolver : public MicroOpResolver {
  TfLiteStatus AddCustom(const char* name, const TFLMRegistration* registration) {
    return kTfLiteOk;
  }
  TfLiteStatus AddConv2D(
      const TFLMRegistration& registration = Register_CONV_2D()) {
    return AddBuiltin(BuiltinOperator_CONV_2D, registration, ParseConv2D);
  }
  TfLiteStatus AddCircularBuffer() {
    return AddCustom("CIRCULAR_BUFFER", tflite::Register_CIRCULAR_BUFFER());
  }
  TfLiteStatus AddDynamicUpdateSlice() {
    return AddBuiltin(BuiltinOperator_DYNAMIC_UPDATE_SLICE,
                      Register_DYNAMIC_UPDATE_SLICE(), ParseDynamicUpdateSlice);
  }
  TfLiteStatus AddRelu(const TFLMRegistration& registration = tflite::Register_RELU()) {
    return AddBuiltin(BuiltinOperator_RELU, registration, ParseRelu);
  }
  TfLiteStatus AddBuiltin(tflite::BuiltinOperator op, const TFLMRegistration& registration,
                          TfLiteBridgeBuiltinParseFunction parser) {
    if (op == BuiltinOperator_CUSTOM) return kTfLiteError;
  }
};
"""


def test_the_resolver_table_is_read_from_the_header() -> None:
    assert parse_resolver(HEADER) == {
        "CONV_2D": "AddConv2D",
        "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
        "RELU": "AddRelu",
    }


def _graph(*ops: str) -> Graph:
    q = Quantization((0.1,), (0,))
    tensors = [Tensor(i, f"t{i}", (1, 4), "int8", q) for i in range(len(ops) + 1)]
    operators = [Operator(i, op, [i], [i + 1]) for i, op in enumerate(ops)]
    return Graph("g", tensors, operators, [0], [len(ops)])


def test_a_relu6_that_changes_quantization_is_refused_not_silently_wrong() -> None:
    """TFLM's RELU6 clamps in the input's quantization and never rescales to the output's
    (LiteRT does): the zoo's standalone_relu came out up to 131 LSB off on the device."""
    graph = _graph("CONV_2D", "RELU6")
    check_semantics(graph, "same")  # equal quantization: TFLM and TFLite agree
    graph.tensors[2] = Tensor(2, "t2", (1, 4), "int8", Quantization((0.0235,), (-128,)))
    with pytest.raises(UnsupportedOpError) as err:
        check_semantics(graph, "rescaled")
    text = str(err.value)
    assert "layer 1 (RELU6)" in text and "zero point -128" in text
    assert "activations_common.cc" in text and "another backend" in text
    graph.operators[1] = Operator(1, "RELU", [1], [2])  # TFLM's RELU does rescale
    check_semantics(graph, "relu")


def test_the_resolver_registers_each_distinct_op_once_in_order_of_appearance() -> None:
    table = parse_resolver(HEADER)
    assert resolver_calls(_graph("RELU", "CONV_2D", "RELU"), table) == ["AddRelu", "AddConv2D"]
    with pytest.raises(UnsupportedOpError) as err:
        resolver_calls(_graph("RELU", "HARD_SWISH", "ELU"), table, checkout="/x")
    assert "HARD_SWISH, ELU" in str(err.value) and "/x" in str(err.value)


# -- fake checkouts: every problem says which and what to do -------------------------------


def _fake_checkout(root: Path, *, third_party: bool = True, api: bool = True) -> Path:
    for rel, needle, _ in REQUIRED_API:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        path.write_text(text + (f"// {needle}\n" if api else "// nothing\n"))
    header = root / MICRO / "micro_mutable_op_resolver.h"
    header.write_text(header.read_text() + HEADER)
    if third_party:
        for name, rel in THIRD_PARTY:
            f = root / DOWNLOADS / name / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("// header\n")
    return root


def _reason(monkeypatch: pytest.MonkeyPatch, value: str | None) -> str:
    if value is None:
        monkeypatch.delenv("TFLM_ROOT", raising=False)
    else:
        monkeypatch.setenv("TFLM_ROOT", value)
    monkeypatch.setenv("HIL_TFLM_KERNELS", "reference")
    reason = TflmBackend().unavailable()
    assert reason is not None
    return reason


def test_unset_missing_and_foreign_checkouts_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert "TFLM_ROOT is not set" in _reason(monkeypatch, None)
    assert "is not a directory" in _reason(monkeypatch, str(tmp_path / "nowhere"))
    reason = _reason(monkeypatch, str(tmp_path))
    assert "does not look like a tflite-micro checkout" in reason and MICRO in reason


def test_missing_third_party_headers_are_named_with_where_they_go(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _fake_checkout(tmp_path / "tflm", third_party=False)
    reason = _reason(monkeypatch, str(root))
    for name, rel in THIRD_PARTY:
        assert f"{DOWNLOADS}/{name}/{rel}" in reason
    assert "third_party_downloads" in reason and "docs/backends.md" in reason


def test_an_exported_tree_with_third_party_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _fake_checkout(tmp_path / "tflm", third_party=False)
    for name, rel in THIRD_PARTY:
        f = root / "third_party" / name / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("// header\n")
    monkeypatch.setenv("TFLM_ROOT", str(root))
    monkeypatch.setenv("HIL_TFLM_KERNELS", "reference")
    assert TflmBackend().unavailable() is None
    includes = TflmBackend().checkout().includes()
    assert str(root / "third_party" / "flatbuffers" / "include") in includes


def test_an_older_checkout_is_an_unsupported_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _fake_checkout(tmp_path / "tflm", api=False)
    reason = _reason(monkeypatch, str(root))
    assert "unsupported version" in reason and "arena_used_bytes" in reason
    assert "tested with tflite-micro" in reason


def test_a_flatbuffers_version_the_schema_rejects_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _fake_checkout(tmp_path / "tflm")
    schema = root / "tensorflow/lite/schema/schema_generated.h"
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(
        "static_assert(FLATBUFFERS_VERSION_MAJOR == 25 &&\n FLATBUFFERS_VERSION_MINOR == 9 &&\n"
        " FLATBUFFERS_VERSION_REVISION == 23, \"Non-compatible flatbuffers version\");\n"
    )
    base = root / DOWNLOADS / "flatbuffers/include/flatbuffers/base.h"
    base.write_text(
        "#define FLATBUFFERS_VERSION_MAJOR 24\n#define FLATBUFFERS_VERSION_MINOR 3\n"
        "#define FLATBUFFERS_VERSION_REVISION 25\n"
    )
    reason = _reason(monkeypatch, str(root))
    assert "needs flatbuffers v25.9.23" in reason and "v24.3.25" in reason


def test_a_bad_kernel_choice_and_cmsis_nn_without_its_checkout_are_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = _fake_checkout(tmp_path / "tflm")
    monkeypatch.setenv("TFLM_ROOT", str(root))
    monkeypatch.setenv("HIL_TFLM_KERNELS", "fast")
    assert "HIL_TFLM_KERNELS='fast'" in (TflmBackend().unavailable() or "")
    monkeypatch.setenv("HIL_TFLM_KERNELS", "cmsis_nn")
    monkeypatch.delenv("CMSIS_NN_ROOT", raising=False)
    reason = TflmBackend().unavailable() or ""
    assert "CMSIS_NN_ROOT is not set" in reason and "HIL_TFLM_KERNELS=reference" in reason


def test_the_registry_gives_the_tflm_backend() -> None:
    assert isinstance(get_backend("tflm"), TflmBackend)


# -- the real checkout -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflm_root() -> Path:
    root = os.environ.get("TFLM_ROOT", "").strip()
    if not root:
        pytest.skip("needs a TFLM checkout: TFLM_ROOT is not set")
    return Path(root)


def test_sources_follow_tflm_rules(tflm_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIL_TFLM_KERNELS", "reference")
    checkout = TflmBackend().checkout()
    ref = checkout.sources(None)
    names = [p.name for p in ref.core + ref.kernels]
    assert not [n for n in names if "_test" in n or n.startswith(("fake_", "mock_"))]
    assert "debug_log.cc" not in names and "array.cc" not in names  # port / static memory
    assert {"micro_interpreter.cc", "micro_allocator.cc", "greedy_memory_planner.cc",
            "flatbuffer_conversions.cc", "common.cc"} <= set(names)  # fmt: skip
    assert all("cmsis_nn" not in str(p) for p in ref.kernels)
    opt = checkout.sources("cmsis_nn")
    assert len(opt.kernels) == len(ref.kernels) and opt.core == ref.core
    replaced = [p for p in opt.kernels if p.parent.name == "cmsis_nn"]
    assert {p.name for p in replaced} == set(opt.optimized) >= {"conv.cc", "depthwise_conv.cc"}
    # Each replacement stands for the reference file of the same name.
    assert {p.name for p in replaced} <= {p.name for p in ref.kernels}


def _all_models(zoo_model: Callable[[str], Path]) -> list[Path]:
    paths = [zoo_model(name) for name in sorted(ZOO)]
    paths += [SHARED / m for m in SHARED_MODELS if (SHARED / m).is_file()]
    return paths


def test_the_resolver_has_exactly_the_ops_of_every_zoo_and_shared_model(
    tflm_root: Path, zoo_model: Callable[[str], Path]
) -> None:
    table = resolver_table(tflm_root)
    for path in _all_models(zoo_model):
        graph = load_tflite(path)
        calls = resolver_calls(graph, table)
        ops = {op.op for op in graph.operators}
        assert len(calls) == len(ops)
        assert {op for op, method in table.items() if method in calls} == ops, path.name
        assert model_ops(graph)[0] == graph.operators[0].op


# -- the probe image's answers ---------------------------------------------------------------


def _block(code: int, offsets: tuple[int, ...], message: bytes) -> bytes:
    block = struct.pack("<6I", 0x4C465448, code, 4096, 8192, 1, 7)
    block += struct.pack(f"<{len(offsets)}i", *offsets)
    return block + message.ljust(tflm_arena.MESSAGE_BYTES, b"\0")


def test_the_probe_status_block_is_decoded() -> None:
    status = tflm_arena.parse_status(_block(0, (16, -1, 64), b"Failed; \0junk"), 3)
    assert (status.code, status.arena_used, status.offsets) == (0, 4096, (16, -1, 64))
    assert (status.arena_bytes, status.invokes, status.events) == (8192, 1, 7)
    assert status.message == "Failed"
    with pytest.raises(HilError, match="status block"):
        tflm_arena.parse_status(_block(0, (16,), b""), 3)


@pytest.mark.parametrize("used", [644, 656, 4096, 50420])
@pytest.mark.parametrize("extra", [0, 16, 144, 448, 4000])
def test_the_smallest_arena_is_found_in_16_byte_steps(used: int, extra: int) -> None:
    """Bisection between the used size and the probe's arena: sizes below the threshold fail
    (in the image: a clean error, a fault or a wrong layout, all 'too small')."""
    need = -(-used // 16) * 16 + extra
    tried: list[int] = []

    def works(size: int) -> bool:
        tried.append(size)
        assert size % 16 == 0 and used <= size + 16
        return size >= need

    assert tflm_arena.smallest_arena(used, 163840, works) == need
    # Each try boots the probe: a need within FIRST_MARGIN of the used size takes few.
    assert len(tried) <= (7 if extra < tflm_arena.FIRST_MARGIN else 15)


@pytest.mark.parametrize(
    ("code", "message", "error", "words"),
    [
        (3, b"Failed to allocate tail memory. Requested: 900, available 100, missing: 800",
         ModelTooLargeError, "could not lay out"),
        (3, b"Didn't find op for builtin opcode 'SOFTMAX'", UnsupportedOpError, "bench bug"),
        (3, b"Type INT16 (7) not supported.", UnsupportedOpError, "refused model"),
        (5, b"Node CONV_2D (number 0) failed to invoke with status 1", UnsupportedOpError,
         "failed to run"),
        (1, b"model schema version 2", ModelError, "cannot read"),
    ],
)
def test_a_failed_probe_is_explained_with_tflms_words(
    code: int, message: bytes, error: type, words: str
) -> None:
    status = tflm_arena.parse_status(_block(code, (0,), message), 1)
    exc = tflm_arena.explain(status, model="m", board=load_board("qemu-m4"))
    assert type(exc) is error and words in str(exc)
    assert message.decode() in str(exc)
