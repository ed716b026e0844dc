"""The conv-family kernels' fast paths on the cores they are written for, bit for bit.

One firmware image per QEMU board runs every case of kernel_cases.py (random geometry against a
numpy model of TFLite's arithmetic) and every conv-family operator of the tiny Keras models of
test_kernels_vs_reference.py (against TFLite's reference interpreter, fed the interpreter's
own input to that operator): qemu-m4 runs the DSP path with its SMLAD assembly, qemu-m0 (a
Cortex-M0 that faults on unaligned loads) the Thumb-1 assembly. Each case is one layer of the
image, so the bench's per-layer counts give its instructions too (printed, never asserted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from kernel_cases import Case, c_source, random_cases
from test_kernel_paths import failures
from test_kernels_vs_reference import FAMILY, MODELS

from hil.boards import load_board
from hil.build import build
from hil.importer import load_tflite
from hil.link import DeviceLink
from hil.lowering import lower
from hil.lowering.base import CArray, LowerContext
from hil.targets import open_target

pytestmark = pytest.mark.qemu

MODEL_ID = 0x6B11CA5E


def model_cases(tiny_model: Callable[..., Path], arch: str = "") -> list[Case]:
    """Each conv-family operator of the tiny models, lowered as the code generator does (for
    `arch`, the own backend's specialised call: folded bias, one multiplier per tensor, scratch
    in the harness's guarded buffer), with the reference interpreter's input and output for one
    seeded random model input."""
    cases: list[Case] = []
    rng = np.random.default_rng(5)
    for model_name in sorted(MODELS):
        path = tiny_model(model_name)
        graph = load_tflite(path, check_support=False)
        interp = Interpreter(
            str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True,
        )
        interp.allocate_tensors()
        (detail,) = interp.get_input_details()
        interp.set_tensor(detail["index"], rng.integers(-128, 128, detail["shape"], np.int8))
        interp.invoke()
        for op in graph.operators:
            if op.op not in FAMILY:
                continue
            name = f"{model_name}_op{op.index}{'_' + arch if arch else ''}"
            src, dst = op.inputs[0], op.outputs[0]
            scratch: list[int] = [0]

            def plan_scratch(nbytes: int, scratch: list[int] = scratch) -> str:
                scratch[0] = max(scratch[0], nbytes)
                return "((void *)scratch_buf)"


            def ref(i: int, name: str = name, src: int = src, dst: int = dst) -> str:
                if i == src:
                    return f"((int8_t *){name}_in)"
                assert i == dst, f"operator reads tensor {i} besides its input"
                return "out"

            ctx = LowerContext(tensor_ref=ref, prefix=name, scratch=plan_scratch, arch=arch)
            lowered = lower(graph, op, ctx)
            arrays = [CArray(f"{name}_in", "int8_t", interp.get_tensor(src)), *lowered.constants]
            cases.append(
                Case(name, lowered.call, interp.get_tensor(dst), arrays, lowered.macs, scratch[0])
            )
    return cases


@pytest.fixture(scope="module")
def cases(tiny_model: Callable[..., Path]) -> list[Case]:
    """Random cases, and the tiny models' operators lowered plainly and specialised for both
    core classes (each board runs both: a call specialised for the other core must still be
    right, only slower)."""
    return [
        *random_cases(seed=23, conv=24, depthwise=16, fc=10),
        *model_cases(tiny_model),
        *model_cases(tiny_model, "dsp"),
        *model_cases(tiny_model, "scalar"),
    ]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private build cache: the libraries are built once per board for this module."""
    root = tmp_path_factory.mktemp("hil-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIL_CACHE_DIR", str(root))
        yield root


def project(cases: list[Case], where: Path) -> Path:
    """A model project whose layer i runs case i and stores its error count in output 0."""
    n = len(cases)
    layers = "\n".join(
        f"static void layer{i}(void) {{ results[{i}] = hil_case_check({i}u); }}" for i in range(n)
    )
    model = f"""#include <stdint.h>
#include "hil_model.h"
int32_t hil_case_check(uint32_t i);
static int32_t results[{n}] __attribute__((aligned(8)));
static uint8_t unused_input[4];
{layers}
const hil_io_t hil_model_inputs[] = {{{{unused_input, 4u, HIL_DTYPE_UINT8}}}};
const uint32_t hil_model_num_inputs = 1u;
const hil_io_t hil_model_outputs[] = {{{{results, {4 * n}u, HIL_DTYPE_INT32}}}};
const uint32_t hil_model_num_outputs = 1u;
const hil_layer_fn hil_model_layers[] = {{{", ".join(f"layer{i}" for i in range(n))}}};
const uint32_t hil_model_num_layers = {n}u;
const uint32_t hil_model_arena_bytes = 0u;
const uint32_t hil_model_id = {MODEL_ID:#x}u;
"""
    where.mkdir(parents=True, exist_ok=True)
    (where / "cases.c").write_text(c_source(cases))
    (where / "model.c").write_text(model)
    return where


@pytest.mark.parametrize("board_name", ["qemu-m4", "qemu-m0"])
def test_fast_paths_match_on_the_board(
    board_name: str, cases: list[Case], cache: Path, tmp_path: Path
) -> None:
    board = load_board(board_name)
    image = build(project(cases, tmp_path / "kernel_cases"), board, model_name="kernel cases")
    with open_target(board).session(image.elf) as url, DeviceLink(url, timeout=60) as dev:
        info = dev.expect_model(MODEL_ID)
        run = dev.run(1)
        raw = dev.read_output(0)
    counts = np.frombuffer(raw, dtype="<i4").tolist()
    per_count = 1e9 / info.counts_per_second  # instructions per count under -icount shift=0
    per_mac = {
        c.name: round(n * per_count / c.macs, 1)
        for c, n in zip(cases, run.layer_counts, strict=True)
        if c.macs
    }
    print(f"{board_name} instructions per MAC (with the check loop, coarse):", per_mac)
    assert failures(cases, counts) == {}
