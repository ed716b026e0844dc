"""The cmsis-nn backend's generated model.c on the host, against LiteRT, for every zoo and tiny
model: seconds per model instead of a QEMU session each.

The checkout's CMSIS-NN is compiled for the host once per session (no DSP or MVE there: its
plain C path, the one a Cortex-M0 runs) and linked with the model source the backend generates
for qemu-m0 and the own kernels (the fallbacks). The DSP path runs under QEMU in
test_cmsis_nn_qemu.py.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support.native import kernel_archive
from support.tiny_models import SPECS
from zoo import ZOO, sample_inputs

from hil.backends import get_backend
from hil.backends.cmsis_nn import CMSIS_NN_OPS
from hil.boards import load_board
from hil.graph import Graph
from hil.importer import load_tflite
from hil.measure import compare_outputs
from hil.reference.interpreters import INTERPRETERS

REPO = Path(__file__).resolve().parents[2]
_HARNESS = r"""
#include <stdio.h>
#include "hil_model.h"

/* argv[1]: the inputs' bytes in order; argv[2]: where the outputs' bytes go. */
int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    FILE *f = fopen(argv[1], "rb");
    for (uint32_t i = 0; i < hil_model_num_inputs; i++) {
        if (fread(hil_model_inputs[i].data, 1, hil_model_inputs[i].bytes, f) !=
            hil_model_inputs[i].bytes) return 3;
    }
    fclose(f);
    for (uint32_t l = 0; l < hil_model_num_layers; l++) hil_model_layers[l]();
    FILE *o = fopen(argv[2], "wb");
    for (uint32_t i = 0; i < hil_model_num_outputs; i++) {
        fwrite(hil_model_outputs[i].data, 1, hil_model_outputs[i].bytes, o);
    }
    fclose(o);
    return 0;
}
"""
#: Tiny single-layer models whose geometry picks a particular CMSIS-NN kernel or restriction.
TINY = [name for name in SPECS if name != "tanh"]


def _compile(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def host_cmsis_nn(cmsis_nn_root: Path) -> Path:
    """libcmsisnn.a for the host from the checkout, built once per checkout version."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed (Debian package gcc)")
    version = get_backend("cmsis-nn").version()
    key = hashlib.sha256(f"{cmsis_nn_root}\n{version}".encode()).hexdigest()[:16]
    out = Path(tempfile.gettempdir()) / f"hil-native-cmsis-nn-{key}" / "libcmsisnn.a"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=out.parent))
    sources = [
        s for s in sorted((cmsis_nn_root / "Source").rglob("*.c"))
        if not s.name.endswith(("_f16.c", "_f32.c")) and s.name != "arm_nntables_flt.c"
    ]  # fmt: skip
    inc = f"-I{cmsis_nn_root / 'Include'}"

    def obj(i_src: tuple[int, Path]) -> str:
        o = build / f"{i_src[0]}_{i_src[1].stem}.o"
        _compile(["gcc", "-O1", "-fPIC", inc, "-c", str(i_src[1]), "-o", str(o)])
        return str(o)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        objects = list(pool.map(obj, enumerate(sources)))
    tmp = build / "libcmsisnn.a"
    _compile(["ar", "rcs", str(tmp), *objects])
    os.replace(tmp, out)
    return out


def _lsbs(graph: Graph) -> list[float | None]:
    producer = {t: op for op in graph.operators for t in op.outputs}
    lsbs: list[float | None] = []
    for t in graph.outputs:
        op = producer.get(t)
        if graph.tensor(t).dtype == "float32" and op is not None and op.op == "DEQUANTIZE":
            q = graph.tensor(op.inputs[0]).quant
            lsbs.append(float(q.scale[0]) if q else None)
        else:
            lsbs.append(None)
    return lsbs


def _run_native(model: Path, host_lib: Path, work: Path, seeds: tuple[int, ...] = (0, 1)) -> None:
    graph = load_tflite(model)
    project = get_backend("cmsis-nn").generate(
        graph, work / "project", board=load_board("qemu-m0"), model_name=graph.name
    )
    (work / "main.c").write_text(_HARNESS)
    exe = work / "model"
    includes = [REPO / "firmware" / "runtime", REPO / "firmware" / "kernels"]
    includes.append(Path(project.libraries[0].includes[0]))
    _compile(
        ["gcc", "-std=c99", "-O1", *(f"-I{i}" for i in includes), "-o", str(exe),
         str(project.source), str(work / "main.c"), str(host_lib), str(kernel_archive()), "-lm"]
    )  # fmt: skip
    model_bytes = model.read_bytes()
    for seed in seeds:
        inputs = sample_inputs(model, seed)
        (work / "in.bin").write_bytes(b"".join(np.ascontiguousarray(x).tobytes() for x in inputs))
        subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], check=True)
        raw = (work / "out.bin").read_bytes()
        got, pos = [], 0
        for io in project.outputs:
            got.append(np.frombuffer(raw[pos : pos + io.bytes], io.dtype).reshape(io.shape))
            pos += io.bytes
        expected = INTERPRETERS["litert"].run(model_bytes, inputs, 0)
        cmp = compare_outputs(got, expected, _lsbs(graph))
        assert cmp.max_abs_diff <= 1, f"{model.name} seed {seed}: {cmp}"
    # Every op CMSIS-NN has a kernel for ran on it, unless the report says why not.
    for layer in project.layers:
        if layer.op in CMSIS_NN_OPS and not layer.note:
            assert layer.kernel.startswith("arm_"), layer
        if not layer.kernel.startswith("arm_"):
            assert layer.note, f"layer {layer.index} ({layer.op}) fell back without a reason"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_with_cmsis_nn_matches_litert(
    name: str, zoo_model: Callable[[str], Path], host_cmsis_nn: Path, tmp_path: Path
) -> None:
    _run_native(zoo_model(name), host_cmsis_nn, tmp_path)


@pytest.mark.parametrize("name", TINY)
def test_tiny_layer_with_cmsis_nn_matches_litert(
    name: str, tiny_model: Callable[..., Path], host_cmsis_nn: Path, tmp_path: Path
) -> None:
    _run_native(tiny_model(name), host_cmsis_nn, tmp_path)


@pytest.mark.parametrize(
    "model", ["mlperf-tiny-streaming-wakeword.tflite", "mlperf-tiny-toycar-autoencoder.tflite"]
)
def test_shared_model_with_cmsis_nn_matches_litert(
    model: str, host_cmsis_nn: Path, tmp_path: Path
) -> None:
    path = REPO.parent / "shared" / "models" / model
    if not path.is_file():
        pytest.skip(f"{path} not on this machine")
    _run_native(path, host_cmsis_nn, tmp_path, seeds=(0,))
