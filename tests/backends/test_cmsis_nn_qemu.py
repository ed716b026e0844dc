"""The cmsis-nn backend end to end on both QEMU boards: the DSP kernels on qemu-m4, plain C on
qemu-m0, outputs against the reference, the library built once per board, and a checkout that
does not build.

By default a sample that covers every CMSIS-NN kernel the backend calls (the host runs the
whole zoo through the plain C path in test_cmsis_nn_native.py); HIL_BACKENDS_FULL=1 runs every
zoo model on both boards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from zoo import ZOO, sample_inputs

import hil
from hil.build import cache_dir
from hil.errors import BuildError
from hil.report import Report

pytestmark = pytest.mark.qemu

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"
FULL = os.environ.get("HIL_BACKENDS_FULL") == "1"
#: conv (im2col, 1x1 fast), depthwise 3x3, average pool, FC per channel, softmax; add; a
#: broadcast MUL that falls back; inverted residuals.
SAMPLE = {"qemu-m4": ["ds_cnn", "resnet", "mul_se", "mobilenet_v2"], "qemu-m0": ["ds_cnn"]}
CASES = [
    (board, name)
    for board in ("qemu-m4", "qemu-m0")
    for name in (sorted(ZOO) if FULL else SAMPLE[board])
]


def _profile(model: Path, board: str, **kw: object) -> Report:
    report = hil.profile(
        model, board, backend="cmsis-nn", runs=1, warmup=0, progress=False,
        inputs=sample_inputs(model, 0), **kw,
    )  # fmt: skip
    assert report.backend == "cmsis-nn" and report.backend_version
    assert report.numerics["rounding"].startswith("double")
    assert report.check == "passed", (report.max_abs_diff, report.check_note)
    return report


@pytest.mark.parametrize(("board", "name"), CASES)
def test_zoo_model_runs_on_cmsis_nn_and_matches_the_reference(
    board: str, name: str, zoo_model: Callable[[str], Path], cmsis_nn_root: Path,
    qemu_tools: None,
) -> None:  # fmt: skip
    report = _profile(zoo_model(name), board)
    kernels = {layer.kernel for layer in report.layers}
    if name == "ds_cnn":
        assert {"arm_convolve_s8", "arm_depthwise_conv_3x3_s8", "arm_avgpool_s8",
                "arm_softmax_s8"} <= kernels  # fmt: skip
        # The DSP kernels need scratch (im2col, avgpool accumulators), plain C only im2col.
        assert report.scratch_bytes > 0
    if name == "mul_se":
        mul = [layer for layer in report.layers if layer.op == "MUL"]
        assert mul and all(m.kernel == "hil_mul_s8" and "broadcasts" in m.note for m in mul)


@pytest.mark.parametrize("board", ["qemu-m4", "qemu-m0"])
@pytest.mark.parametrize(
    "model", ["mlperf-tiny-streaming-wakeword.tflite", "mlperf-tiny-toycar-autoencoder.tflite"]
)
def test_shared_models_run_on_cmsis_nn(
    board: str, model: str, cmsis_nn_root: Path, qemu_tools: None
) -> None:
    path = SHARED / model
    if not path.is_file():
        pytest.skip(f"{path} not on this machine")
    report = _profile(path, board)
    assert any(layer.kernel.startswith("arm_") for layer in report.layers)


def _library_records(board: str) -> dict[Path, int]:
    root = cache_dir() / "build" / board
    return {p: p.stat().st_mtime_ns for p in root.glob("cmsis_nn-*/hil-build.json")}


def test_the_library_is_built_once_per_board_and_a_layers_diff_agrees(
    zoo_model: Callable[[str], Path], cmsis_nn_root: Path, qemu_tools: None
) -> None:
    _profile(zoo_model("depthwise"), "qemu-m4")
    before = _library_records("qemu-m4")
    report = _profile(zoo_model("separable"), "qemu-m4", layers_diff=True)
    assert _library_records("qemu-m4") == before  # reused, not rebuilt
    diff = report.layers_diff
    assert diff is not None and diff.tensors and diff.first_bad_layer is None
    assert len(diff.tensors) == len(report.layers)


def test_a_checkout_that_does_not_build_names_the_library_and_what_to_do(
    cmsis_nn_root: Path, qemu_tools: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    zoo_model: Callable[[str], Path],
) -> None:  # fmt: skip
    broken = tmp_path / "CMSIS-NN"
    shutil.copytree(cmsis_nn_root / "Include", broken / "Include")
    (broken / "Source" / "ConvolutionFunctions").mkdir(parents=True)
    (broken / "Source" / "ConvolutionFunctions" / "arm_broken_s8.c").write_text(
        "int arm_broken_s8(void) { return missing_symbol; }\n"
    )
    monkeypatch.setenv("CMSIS_NN_ROOT", str(broken))
    with pytest.raises(BuildError) as err:
        hil.profile(zoo_model("dense"), "qemu-m4", backend="cmsis-nn", runs=1, progress=False)
    text = str(err.value)
    assert "the CMSIS-NN library" in text and str(broken) in text
    assert "missing_symbol" in text and "complete CMSIS-NN checkout" in text
