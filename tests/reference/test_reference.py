"""The reference side of the correctness check: inputs in, reference outputs out (LiteRT or
TFLM, always in a child process)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hil.errors import HilError, InputError, ModelError, ReferenceUnavailable
from hil.reference import (
    TensorSpec,
    check_inputs,
    check_outputs,
    input_specs,
    load_npy_inputs,
    output_specs,
    random_inputs,
    reference_outputs,
    run_reference,
)
from hil.reference import runner as reference_runner

ZooModel = Callable[[str], Path]


def _by_shape(specs: list[TensorSpec], shape: tuple[int, ...]) -> int:
    return next(i for i, s in enumerate(specs) if s.shape == shape)


def _fc_expected(model: Path, x: np.ndarray, out_spec: TensorSpec) -> np.ndarray:
    """The FULLY_CONNECTED that reads graph input `x` only, in float math from its int8 params."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    tensors = {d["index"]: d for d in interp.get_tensor_details()}
    in_index = next(d["index"] for d in interp.get_input_details() if tuple(d["shape"]) == x.shape)
    op = next(
        o
        for o in interp._get_ops_details()
        if o["op_name"] == "FULLY_CONNECTED" and o["inputs"][0] == in_index
    )
    _, w_idx, b_idx = (int(i) for i in op["inputs"])
    w = interp.get_tensor(w_idx).astype(np.int64)
    b = interp.get_tensor(b_idx).astype(np.int64) if b_idx >= 0 else 0  # zero bias: left out
    s_in = tensors[in_index]["quantization_parameters"]["scales"][0]
    zp_in = tensors[in_index]["quantization_parameters"]["zero_points"][0]
    s_w = tensors[w_idx]["quantization_parameters"]["scales"]
    acc = (x.astype(np.int64) - zp_in) @ w.T + b
    q = np.round(acc * s_in * s_w / out_spec.scale) + out_spec.zero_point
    return np.clip(q, -128, 127)


def test_outputs_follow_int8_fully_connected_math_and_keep_io_order(zoo_model: ZooModel) -> None:
    model = zoo_model("two_io")
    ins, outs = input_specs(model), output_specs(model)
    ia, ib = _by_shape(ins, (1, 6)), _by_shape(ins, (1, 4))
    o_wide, o_mixed = _by_shape(outs, (1, 5)), _by_shape(outs, (1, 3))
    assert {s.dtype for s in ins + outs} == {np.dtype(np.int8)}

    inputs = random_inputs(model, seed=3)
    y = reference_outputs(model, inputs)
    assert [o.shape for o in y] == [s.shape for s in outs]
    assert [o.dtype for o in y] == [s.dtype for s in outs]

    # Only input a feeds the first FC: its output follows from int8 math on a alone.
    assert np.abs(y[o_wide].astype(int) - _fc_expected(model, inputs[ia], outs[o_wide])).max() <= 1

    # Changing input b changes only the output that reads it.
    changed = list(inputs)
    changed[ib] = (inputs[ib].astype(np.int16) * -1 - 1).astype(np.int8)
    y2 = reference_outputs(model, changed)
    np.testing.assert_array_equal(y2[o_wide], y[o_wide])
    assert not np.array_equal(y2[o_mixed], y[o_mixed])


def test_random_int8_inputs_are_seeded_and_cover_the_full_range(zoo_model: ZooModel) -> None:
    model = zoo_model("mobilenet_v2")  # 16x16x3: 768 values
    a, b, c = random_inputs(model, 0), random_inputs(model, 0), random_inputs(model, 1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].dtype == np.int8 and a[0].shape == (1, 16, 16, 3)
    assert a[0].min() == -128 and a[0].max() == 127


def test_random_float_inputs_quantize_over_the_inputs_range(zoo_model: ZooModel) -> None:
    model = zoo_model("float_io")
    (spec,) = input_specs(model)
    assert spec.dtype == np.float32 and spec.scale is not None
    (x,) = random_inputs(model, 0)
    assert x.dtype == np.float32
    q = np.round(x / spec.scale) + spec.zero_point
    assert q.min() >= -128 and q.max() <= 127
    assert q.min() < -100 and q.max() > 100  # spread over the range, not a corner of it
    (y,) = reference_outputs(model, [x])
    assert y.dtype == np.float32 and np.isfinite(y).all()


def test_reference_runs_are_deterministic_and_input_dependent(zoo_model: ZooModel) -> None:
    model = zoo_model("add_block")
    x0, x1 = random_inputs(model, 0), random_inputs(model, 1)
    np.testing.assert_array_equal(reference_outputs(model, x0)[0], reference_outputs(model, x0)[0])
    assert not np.array_equal(reference_outputs(model, x0)[0], reference_outputs(model, x1)[0])
    assert (
        reference_outputs(model.read_bytes(), x0)[0].tolist()
        == reference_outputs(model, x0)[0].tolist()
    )


SPEC = TensorSpec("in", (1, 4, 3), np.dtype(np.int8), 0.1, 0)
FSPEC = TensorSpec("fin", (1, 5), np.dtype(np.float32), 0.1, 0)


def test_check_inputs_accepts_what_loses_nothing() -> None:
    ints = np.arange(12).reshape(4, 3)  # int64, no batch dimension
    (x,) = check_inputs([SPEC], [ints])
    assert x.dtype == np.int8 and x.shape == (1, 4, 3)
    np.testing.assert_array_equal(x.ravel(), np.arange(12))
    (f,) = check_inputs([FSPEC], [np.linspace(0, 1, 5)[None]])
    assert f.dtype == np.float32


@pytest.mark.parametrize(
    ("spec", "x", "words"),
    [
        (SPEC, np.zeros((1, 3, 4), np.int8), ["shape [1, 3, 4]", "int8[1, 4, 3]", "'in'"]),
        (SPEC, np.full((1, 4, 3), 300), ["300", "-128..127", "quantize"]),
        (SPEC, np.zeros((1, 4, 3), np.float32), ["float32", "int8[1, 4, 3]", "astype(np.int8)"]),
        (FSPEC, np.zeros((1, 5), np.int8), ["int8", "float32[1, 5]", "astype(np.float32)"]),
    ],
)
def test_check_inputs_names_expected_and_got(
    spec: TensorSpec, x: np.ndarray, words: list[str]
) -> None:
    with pytest.raises(InputError) as err:
        check_inputs([spec], [x], ["x.npy"])
    for w in [*words, "x.npy"]:
        assert w in str(err.value)


def test_check_inputs_wants_one_array_per_input() -> None:
    with pytest.raises(InputError, match=r"has 2 input\(s\).*but 1 were given"):
        check_inputs([SPEC, FSPEC], [np.zeros((1, 4, 3), np.int8)])


def test_load_npy_inputs(zoo_model: ZooModel, tmp_path: Path) -> None:
    model = zoo_model("dense")
    good = tmp_path / "good.npy"
    np.save(good, np.arange(48) - 24)
    (x,) = load_npy_inputs([good], model)
    assert x.dtype == np.int8 and x.shape == (1, 48)

    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"garbage\.npy is not a readable \.npy"):
        load_npy_inputs([garbage], model)
    with pytest.raises(InputError, match=r"missing\.npy does not exist"):
        load_npy_inputs([tmp_path / "missing.npy"], model)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((1, 47), np.int8))
    with pytest.raises(InputError, match=r"wrong.npy: shape \[1, 47\].*int8\[1, 48\]"):
        load_npy_inputs([wrong], model)


def test_unusable_models_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        input_specs(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    for ref in ("litert", "tflm"):
        with pytest.raises(ReferenceUnavailable, match="cannot"):
            reference_outputs(bad, [], ref)
    with pytest.raises(ModelError, match="too small to be a TFLite model"):
        random_inputs(b"garbage", 0)


def test_importing_the_module_stays_cheap() -> None:
    code = (
        "import sys, hil.reference; "
        "print(any(m in sys.modules for m in ('ai_edge_litert', 'tensorflow', 'tflite_micro')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_interpreter_ever_loads_in_the_callers_process(zoo_model: ZooModel) -> None:
    """Specs, random inputs, .npy checks and reference outputs (both interpreters) leave the
    caller's process free of interpreter code: an abort in there cannot kill the bench."""
    model = zoo_model("dense")
    code = f"""
import sys, numpy as np
from hil.reference import input_specs, random_inputs, reference_outputs, check_inputs
x = random_inputs({str(model)!r}, 0)
check_inputs(input_specs({str(model)!r}), x)
a = reference_outputs({str(model)!r}, x, "litert")
b = reference_outputs({str(model)!r}, x, "tflm")
assert a[0].shape == b[0].shape
print(sorted(m for m in ("ai_edge_litert", "tflite_micro", "tensorflow") if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("ref", ["litert", "tflm"])
def test_a_crashing_reference_interpreter_becomes_a_model_error(
    wide_softmax: Path, ref: str
) -> None:
    """Both reference SOFTMAXes abort their process on a row with 512+ equal maxima."""
    spec = input_specs(wide_softmax)[0]
    with pytest.raises(
        ReferenceUnavailable, match=r"crashed .*\(killed by SIGABRT, exit status 134"
    ):
        reference_outputs(wide_softmax, [np.full(spec.shape, 5, spec.dtype)], ref)
    # the bench itself keeps going: a normal row still works afterwards
    row = np.arange(1000).reshape(spec.shape).astype(spec.dtype)
    ok = reference_outputs(wide_softmax, [row], ref)
    assert ok[0].shape == spec.shape


@pytest.mark.parametrize("ref", ["litert", "tflm"])
def test_a_corrupt_options_type_aborts_only_the_child(wakeword: Path, ref: str) -> None:
    """The SOFTMAX's options type byte made NONE (or CONV_2D's): both interpreters abort."""
    from conftest import with_options_type

    x = random_inputs(wakeword, 0)
    for value in (0, 1):
        corrupt = with_options_type(wakeword.read_bytes(), 10, value)
        with pytest.raises(ReferenceUnavailable, match=r"crashed .*SIGABRT"):
            reference_outputs(corrupt, x, ref)
        # Making inputs runs no interpreter: the bench's importer takes the model or refuses it.
        with contextlib.suppress(HilError):
            random_inputs(corrupt, 0)
    assert reference_outputs(wakeword, x, ref)[0].shape == (1, 3)  # still standing


def test_a_hung_or_broken_worker_is_explained(
    zoo_model: ZooModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = zoo_model("dense").read_bytes()
    x = random_inputs(model, 0)
    monkeypatch.setattr(reference_runner, "_WORKER", ("-c", "import time; time.sleep(60)"))
    run = run_reference("litert", model, x, timeout=1.0)
    assert not run.ran and "did not finish within 1 s" in run.problem
    monkeypatch.setattr(reference_runner, "_WORKER", ("-c", "raise SystemExit('worker broke')"))
    run = run_reference("tflm", model, x)
    assert (
        not run.ran
        and run.problem == "TFLM failed on this model (worker exit code 1): worker broke"
    )
    monkeypatch.setattr(reference_runner, "_WORKER", ("-c", "print('not a pickle')"))
    assert "answered garbage" in run_reference("tflm", model, x).problem


# --- LiteRT refuses, TFLM runs ---------------------------------------------------------------


def test_litert_refuses_per_tensor_weights_with_axis_3_and_tflm_runs_them(
    axis3_model: Path, toycar: Path
) -> None:
    x = random_inputs(axis3_model, 0)  # from the bench's own import: no interpreter needed
    assert x[0].shape == (1, 640) and x[0].dtype == np.int8
    with pytest.raises(ReferenceUnavailable, match="quantized_dimension"):
        reference_outputs(axis3_model, x, "litert")
    run = run_reference("tflm", axis3_model.read_bytes(), x)
    assert run.ran and run.version.startswith("tflite-micro==")
    # The field means nothing for one scale: TFLM gives what it gives for the sound model,
    # and that is within 1 LSB of LiteRT's answer for it.
    np.testing.assert_array_equal(run.outputs[0], reference_outputs(toycar, x, "tflm")[0])
    litert = reference_outputs(toycar, x, "litert")[0].astype(int)
    assert np.abs(run.outputs[0].astype(int) - litert).max() <= 1


def _comparing_with(device: list[np.ndarray]) -> Callable[[list[np.ndarray]], tuple[float, float]]:
    def compare(expected: list[np.ndarray]) -> tuple[float, float]:
        diff = np.abs(device[0].astype(int) - expected[0].astype(int))
        return float(np.mean(diff == 0)), float(diff.max())

    return compare


def test_check_choices(axis3_model: Path, toycar: Path) -> None:
    sound = toycar.read_bytes()
    broken = axis3_model.read_bytes()
    x = random_inputs(sound, 0)
    device = reference_outputs(sound, x, "litert")
    compare = _comparing_with(device)

    auto = check_outputs(sound, x, compare)
    assert (auto.status, auto.reference, auto.note) == ("passed", "litert", "")
    assert [c.reference for c in auto.checks] == ["litert"]

    fell_back = check_outputs(broken, x, compare, "auto")
    assert (fell_back.status, fell_back.reference) == ("passed", "tflm")
    assert (
        fell_back.note.startswith("checked with TFLM") and "quantized_dimension" in fell_back.note
    )
    assert [(c.reference, c.status) for c in fell_back.checks] == [
        ("litert", "not done"),
        ("tflm", "passed"),
    ]

    only = check_outputs(broken, x, compare, "litert")
    assert (only.status, only.reference) == ("not done", "")
    assert "no reference could run the model" in only.note and np.isnan(only.max_abs_diff)

    both = check_outputs(sound, x, compare, "both")
    assert (both.status, both.reference) == ("passed", "litert+tflm")
    assert [c.version.split("==")[0] for c in both.checks] == ["ai-edge-litert", "tflite-micro"]

    half = check_outputs(broken, x, compare, "both")
    assert (half.status, half.reference) == ("not done", "tflm")

    wrong = _comparing_with([(device[0].astype(int) + 2).clip(-128, 127).astype(np.int8)])
    failed = check_outputs(sound, x, wrong, "tflm")
    assert (failed.status, failed.reference) == ("failed", "tflm") and failed.max_abs_diff >= 2

    with pytest.raises(HilError, match="choose one of auto, litert, tflm, both"):
        check_outputs(sound, x, compare, "tflite")
