"""The tflm backend end to end on both QEMU boards, with TFLM's reference kernels and (when
CMSIS_NN_ROOT is set too) its cmsis_nn kernels: outputs against the reference, exactly the
model's ops in the resolver, per-layer counts from the profiler, the smallest arena that works
(found once and cached), the library built once per board and kernels, and what a failure
looks like.

Skipped without TFLM_ROOT. By default a sample of the zoo that covers every op family;
HIL_BACKENDS_FULL=1 runs every zoo model on both boards with both kernel sets. The first run
builds TFLM (and CMSIS-NN) once per board and kernel set, which takes minutes; later runs
reuse the libraries from the build cache.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from zoo import ZOO, sample_inputs

import hil
from hil.backends.tflm import TflmBackend
from hil.backends.tflm import arena as tflm_arena
from hil.backends.tflm.resolver import resolver_table
from hil.build import cache_dir
from hil.errors import BuildError, UnsupportedOpError
from hil.importer import load_tflite
from hil.report import Report

pytestmark = pytest.mark.qemu

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"
SHARED_MODELS = ["mlperf-tiny-streaming-wakeword.tflite", "mlperf-tiny-toycar-autoencoder.tflite"]
FULL = os.environ.get("HIL_BACKENDS_FULL") == "1"
#: conv, depthwise, average pool, FC, softmax (ds_cnn); hard-swish, SE (mean, mul), add
#: (mobilenet_v3); quantize/dequantize with float I/O; two inputs and outputs with concat.
SAMPLE = {
    "qemu-m4": ["ds_cnn", "mobilenet_v3", "float_io", "two_io"],
    "qemu-m0": ["ds_cnn", "mobilenet_v3"],
}
#: Zoo models whose semantics TFLM does not follow (hil.backends.tflm.check_semantics): its
#: RELU6 keeps the input's quantization where TFLite rescales to the output's.
TFLM_DIFFERS = {"standalone_relu": r"layer \d+ \(RELU6\).*keeps the input's"}
BOARDS = ("qemu-m4", "qemu-m0")
KERNELS = ("reference", "cmsis_nn")
CASES = [
    (board, kernels, name)
    for board in BOARDS
    for kernels in KERNELS
    for name in (sorted(ZOO) if FULL else SAMPLE[board])
]


@pytest.fixture(scope="session")
def tflm_root() -> Path:
    root = os.environ.get("TFLM_ROOT", "").strip()
    if not root:
        pytest.skip("needs a TFLM checkout: TFLM_ROOT is not set")
    missing = [t for t in ("cmake", "arm-none-eabi-g++", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")
    return Path(root)


@pytest.fixture
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Selects TFLM's kernels for the test; cmsis_nn skips without a CMSIS-NN checkout."""
    choice = request.param
    monkeypatch.setenv("HIL_TFLM_KERNELS", choice)
    reason = TflmBackend().unavailable()
    if reason:
        pytest.skip(f"tflm with the {choice} kernels is unavailable: {reason}")
    yield choice


def _profile(model: Path, board: str, **kw: object) -> Report:
    report = hil.profile(
        model, board, backend="tflm", runs=1, warmup=0, progress=False,
        inputs=sample_inputs(model, 0), **kw,
    )  # fmt: skip
    assert report.backend == "tflm" and report.backend_version
    assert report.numerics["rounding"].startswith("double")
    assert report.check == "passed", (report.max_abs_diff, report.check_note)
    # The smallest arena that works (found by the probe on the device): at least what TFLM
    # uses once set up, in steps of its 16-byte alignment, far below the probe's own.
    used = report.arena_used_bytes
    assert used and used <= report.arena_bytes < used + 4096 and report.arena_bytes % 16 == 0
    # Every layer timed by the profiler; together they make up the inference.
    counts = [layer.counts for layer in report.layers]
    assert all(c > 0 for c in counts), counts
    assert sum(counts) <= report.latency_counts <= sum(counts) * 1.005 + 400
    return report


def _project(model: Path, board: str) -> Path:
    import hashlib

    sha = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    return cache_dir() / "projects" / f"{sha}-tflm-{board}"


def _check_resolver(model: Path, board: str, root: Path) -> None:
    """The generated resolver registers each op of the model once, and nothing else."""
    source = (_project(model, board) / "model.cc").read_text()
    calls = re.findall(r"resolver->(Add\w+)\(\)", source)
    table = resolver_table(root)
    ops = {op.op for op in load_tflite(model).operators}
    assert len(calls) == len(set(calls)) == len(ops)
    assert {op for op, method in table.items() if method in calls} == ops
    assert f"MicroMutableOpResolver<{len(ops)}>" in source


@pytest.mark.parametrize(
    ("board", "kernels", "name"), CASES, indirect=["kernels"]
)
def test_zoo_model_runs_on_tflm_and_matches_the_reference(
    board: str, kernels: str, name: str, zoo_model: Callable[[str], Path], tflm_root: Path
) -> None:
    model = zoo_model(name)
    if name in TFLM_DIFFERS:
        # Refused before anything is built: TFLM would run it, but not as TFLite does.
        with pytest.raises(UnsupportedOpError, match=TFLM_DIFFERS[name]):
            hil.profile(model, board, backend="tflm", runs=1, progress=False)
        return
    report = _profile(model, board)
    _check_resolver(model, board, tflm_root)
    assert report.numerics["kernels"] == kernels
    conv = [layer for layer in report.layers if layer.op == "CONV_2D"]
    expected = "kernels/cmsis_nn/conv.cc" if kernels == "cmsis_nn" else "kernels/conv.cc"
    assert all(layer.kernel == expected for layer in conv)


@pytest.mark.parametrize("kernels", ["reference"], indirect=True)
@pytest.mark.parametrize("board", BOARDS)
def test_every_op_the_resolver_registered_is_found(
    board: str, kernels: str, zoo_model: Callable[[str], Path], tflm_root: Path
) -> None:
    """Regression: two_io (FULLY_CONNECTED, CONCATENATION) failed on qemu-m4 with "Didn't find
    op for builtin opcode 'FULLY_CONNECTED'". GCC 12.2 inlined the set-up of a model with few
    ops into the function that calls setjmp and miscompiled the resolver there (the second
    AddX() overwrote the first op); the set-up is now kept out of line (model.cc.j2)."""
    model = zoo_model("two_io")
    report = _profile(model, board)
    _check_resolver(model, board, tflm_root)
    assert [layer.op for layer in report.layers] == [
        "FULLY_CONNECTED", "CONCATENATION", "FULLY_CONNECTED"
    ]


@pytest.mark.parametrize("kernels", KERNELS, indirect=True)
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_models_run_on_tflm(board: str, kernels: str, model: str, tflm_root: Path) -> None:
    path = SHARED / model
    if not path.is_file():
        pytest.skip(f"{path} not on this machine")
    _profile(path, board)
    _check_resolver(path, board, tflm_root)


def _records(board: str) -> dict[Path, int]:
    """TFLM's library trees (core and kernels) of `board` and when each was finished."""
    root = cache_dir() / "build" / board
    return {p: p.stat().st_mtime_ns for p in root.glob("tflm_*-*/hil-build.json")}


@pytest.mark.parametrize("kernels", ["reference"], indirect=True)
def test_library_and_arena_are_found_once_and_reused(
    kernels: str, zoo_model: Callable[[str], Path], tflm_root: Path
) -> None:
    _profile(zoo_model("dense"), "qemu-m4")
    libraries = _records("qemu-m4")
    assert libraries
    first = _profile(zoo_model("softmax"), "qemu-m4")
    assert _records("qemu-m4") == libraries  # the library is reused, not rebuilt
    probes = sorted((cache_dir() / "tflm-arena").glob("*.json"), key=os.path.getmtime)
    again = _profile(zoo_model("softmax"), "qemu-m4")
    assert again.cached and again.arena_bytes == first.arena_bytes
    # No new probe: the arena figure came from the cache.
    assert sorted((cache_dir() / "tflm-arena").glob("*.json"), key=os.path.getmtime) == probes


@pytest.mark.parametrize("kernels", KERNELS, indirect=True)
def test_layers_diff_reads_every_operator_output_back(
    kernels: str, zoo_model: Callable[[str], Path], tflm_root: Path
) -> None:
    plain = _profile(zoo_model("mobilenet_v1"), "qemu-m4")
    report = _profile(zoo_model("mobilenet_v1"), "qemu-m4", layers_diff=True)
    diff = report.layers_diff
    assert diff is not None and diff.tensors and diff.first_bad_layer is None, diff
    assert len(diff.tensors) == len(report.layers)
    # Keeping every tensor (TFLM's preserve_all_tensors) needs a larger arena of its own.
    assert report.arena_bytes > plain.arena_bytes


@pytest.mark.parametrize("kernels", ["reference"], indirect=True)
def test_an_op_left_out_of_the_resolver_is_caught_by_the_probe(
    kernels: str, zoo_model: Callable[[str], Path], tflm_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The resolver cannot miss an op (it is computed from the graph); if it did, the probe
    would stop with TFLM's own words instead of a wrong measurement."""
    import hil.backends.tflm as tflm

    # A probe of its own (not the arena figure cached for the intact model).
    monkeypatch.setattr(tflm_arena, "PROBE_VERSION", f"sabotaged-{os.getpid()}")
    real_calls = tflm.resolver_calls
    monkeypatch.setattr(tflm, "resolver_calls", lambda *a, **k: real_calls(*a, **k)[:-1])
    with pytest.raises(UnsupportedOpError) as err:
        hil.profile(zoo_model("softmax"), "qemu-m4", backend="tflm", runs=1, progress=False)
    assert "Didn't find op for builtin opcode 'SOFTMAX'" in str(err.value)


def test_a_checkout_that_does_not_build_names_the_library_and_what_to_do(
    tflm_root: Path, zoo_model: Callable[[str], Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A checkout with every file the backend checks for, whose core does not compile."""
    from hil.backends.tflm.checkout import DOWNLOADS, MICRO, REQUIRED_API, THIRD_PARTY

    broken = tmp_path / "tflite-micro"
    for rel, _, _ in REQUIRED_API:
        (broken / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tflm_root / rel, broken / rel)
    for name, rel in THIRD_PARTY:
        (broken / DOWNLOADS / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (broken / DOWNLOADS / name / rel).write_text("// header\n")
    (broken / MICRO / "kernels").mkdir(parents=True, exist_ok=True)
    (broken / MICRO / "kernels" / "fully_connected.cc").write_text("int fc;\n")
    (broken / MICRO / "micro_broken.cc").write_text("int broken() { return missing_symbol; }\n")
    monkeypatch.setenv("TFLM_ROOT", str(broken))
    monkeypatch.setenv("HIL_TFLM_KERNELS", "reference")
    with pytest.raises(BuildError) as err:
        hil.profile(zoo_model("dense"), "qemu-m4", backend="tflm", runs=1, progress=False)
    text = str(err.value)
    assert "the TFLM library" in text and str(broken) in text
    assert "missing_symbol" in text and "complete tflite-micro checkout" in text

