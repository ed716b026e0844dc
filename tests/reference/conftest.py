"""Models for the reference tests: one that LiteRT refuses but TFLM runs, one on which both
interpreters abort; and the QEMU toolchain check for the tests that profile them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from support.convert import cached_model, session_cache_dir

SHARED_MODELS = Path(__file__).resolve().parents[3] / "shared" / "models"
TOYCAR = SHARED_MODELS / "mlperf-tiny-toycar-autoencoder.tflite"
WAKEWORD = SHARED_MODELS / "mlperf-tiny-streaming-wakeword.tflite"


def per_tensor_axis3(data: bytes) -> bytes:
    """`data` with every per-tensor (single-scale) int8 weight tensor's quantized_dimension set
    to 3, as some real models made elsewhere carry it. TFLite's schema says the field only
    matters for per-axis scales, so TFLM ignores it; LiteRT refuses it where the tensor has
    fewer than 4 dimensions. The file is re-packed with the flatbuffer object API of the
    pinned tflite-micro package."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model: Any = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    changed = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            constant = model.buffers[t.buffer].data is not None
            int8 = t.type == fb.TensorType.INT8
            if q is not None and q.scale is not None and len(q.scale) == 1 and constant and int8:
                q.quantizedDimension = 3
                changed += 1
    assert changed, "no per-tensor int8 weights to change"
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_options_type(data: bytes, operator: int, value: int) -> bytes:
    """`data` with operator `operator`'s builtin-options type byte set to `value` (its options
    table left as it is): the corruption that once aborted the bench in making random inputs."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    model: Any = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    model.subgraphs[0].operators[operator].builtinOptionsType = value
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def shared_model(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing (the MLPerf Tiny test models live in ../shared/models)")
    return path


@pytest.fixture(scope="session")
def wakeword() -> Path:
    """MLPerf Tiny's streaming wakeword model (its operator 10 is the SOFTMAX)."""
    return shared_model(WAKEWORD)


@pytest.fixture(scope="session")
def toycar() -> Path:
    """MLPerf Tiny's ToyCar autoencoder: a real model made elsewhere, per-tensor FC weights."""
    return shared_model(TOYCAR)


@pytest.fixture(scope="session")
def axis3_model(toycar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ToyCar with quantized_dimension = 3 on its per-tensor weights: LiteRT refuses it."""
    path = tmp_path_factory.mktemp("axis3") / "toycar-axis3.tflite"
    path.write_bytes(per_tensor_axis3(toycar.read_bytes()))
    return path


@pytest.fixture(scope="session")
def wide_softmax(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SOFTMAX over 1000 values: both reference interpreters abort their process (SIGABRT) on a
    row with 512 or more equal maxima (seen with ai-edge-litert 2.3.0 and tflite-micro
    0.dev20261023182759)."""
    from zoo import ZooEntry, convert

    def build(k: Any) -> Any:
        x = inp = k.Input((1000,), batch_size=1)
        return k.Model(inp, k.layers.Softmax()(x))

    entry = ZooEntry("wide_softmax", build, frozenset({"SOFTMAX"}), False)
    cache = session_cache_dir(request, tmp_path_factory, "tinyml-hil-reference")
    return cached_model(cache, "wide_softmax", "wide_softmax-1", lambda: convert(entry))


@pytest.fixture
def qemu_tools() -> None:
    """Skip, saying why, when the cross toolchain or QEMU is missing."""
    missing = [t for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")
