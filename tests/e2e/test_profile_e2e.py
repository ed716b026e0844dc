"""End to end through `hil.profile`: every zoo model, the MLPerf Tiny models and the examples,
on both QEMU boards, checked against the TFLite reference and for sane measurements.

Few inferences per model (runs=2, warmup=1): the point is correctness and plausibility of the
report, not precise latency. Libraries are built once per board (build cache), so each model
costs one compile of its generated source and one QEMU session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from zoo import ZOO, sample_inputs

import hil
from hil.boards import load_board
from hil.errors import InputError
from hil.graph import Graph
from hil.importer import load_tflite
from hil.lowering.fuse import fuse_pads

pytestmark = pytest.mark.qemu

BOARDS = ["qemu-m4", "qemu-m0"]
REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"
MLPERF = ["mlperf-tiny-streaming-wakeword.tflite", "mlperf-tiny-toycar-autoencoder.tflite"]
EXAMPLES = sorted((REPO / "examples" / "models").glob("*.tflite"))
WHOLE_NETWORKS = {"resnet", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "ds_cnn", "autoencoder"}


def check_report(
    report: hil.Report,
    graph: Graph,
    board_name: str,
    runs: int,
    record_property: Callable[[str, object], None],
) -> None:
    """What every profiled model must satisfy: outputs within 1 LSB and plausible figures."""
    board = load_board(board_name)
    record_property("outputs_exact_rate", report.outputs_exact_rate)
    record_property("latency_counts", report.latency_counts)
    assert report.board == board_name and report.timing_source == board.timing_source
    assert report.max_abs_diff <= 1, (
        f"outputs differ from the TFLite reference by {report.max_abs_diff} LSB "
        f"(exact rate {report.outputs_exact_rate:.3f})"
    )
    assert 0.0 <= report.outputs_exact_rate <= 1.0

    assert report.latency_counts > 0 and report.latency_ms > 0
    assert len(report.latency_counts_per_run) == runs
    assert len(set(report.latency_counts_per_run)) == 1, (
        f"counts differ between runs under QEMU icount: {report.latency_counts_per_run}"
    )

    assert 0 < report.flash_bytes <= board.flash_bytes
    assert 0 < report.ram_bytes <= board.ram_bytes
    assert report.stack_bytes > 0
    assert report.ram_bytes == report.static_ram_bytes + report.stack_bytes
    assert report.arena_bytes <= report.static_ram_bytes
    weights = sum(t.nbytes for t in graph.tensors if t.is_constant)
    assert report.flash_bytes > weights * 0.9  # weights are in flash (layouts may pad/drop)

    # The own backend folds a PAD into the convolution that reads it: no layer of its own.
    assert [layer.op for layer in report.layers] == [op.op for op in fuse_pads(graph).operators]
    assert report.macs == sum(layer.macs for layer in report.layers)
    assert report.macs > 0  # every model here has a conv or fully connected layer
    layer_sum = sum(layer.counts for layer in report.layers)
    # The runtime times layers back to back, so device counts add up exactly; converting each
    # figure to instructions on the host may round, and a runtime that timed the whole loop
    # separately would add a little loop overhead.
    slack = 0.01 * report.latency_counts + 2 * len(report.layers)
    assert abs(layer_sum - report.latency_counts) <= slack, (
        f"per-layer counts sum to {layer_sum}, total is {report.latency_counts}"
    )


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model(
    name: str,
    board: str,
    zoo_model: Callable[[str], Path],
    record_property: Callable[[str, object], None],
) -> None:
    path = zoo_model(name)
    graph = load_tflite(path)
    inputs = sample_inputs(path, seed=0)
    report = hil.profile(path, board, runs=2, warmup=1, inputs=inputs, progress=False)
    check_report(report, graph, board, 2, record_property)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", sorted(WHOLE_NETWORKS))
def test_repeated_profile_is_a_cache_hit_with_identical_counts(
    name: str, board: str, zoo_model: Callable[[str], Path]
) -> None:
    path = zoo_model(name)
    inputs = sample_inputs(path, seed=1)
    first = hil.profile(path, board, runs=1, warmup=0, inputs=inputs, progress=False)
    again = hil.profile(path, board, runs=1, warmup=0, inputs=inputs, progress=False)
    assert again.cached
    assert again.latency_counts == first.latency_counts
    assert [la.counts for la in again.layers] == [la.counts for la in first.layers]
    assert (again.flash_bytes, again.ram_bytes) == (first.flash_bytes, first.ram_bytes)
    assert again.max_abs_diff == first.max_abs_diff


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("file", MLPERF)
def test_mlperf_tiny_model(
    file: str, board: str, record_property: Callable[[str, object], None]
) -> None:
    """Models nobody on this project built: the check that we follow TFLite, not our converter."""
    path = SHARED_MODELS / file
    if not path.exists():
        pytest.skip(
            f"{path} is missing: the MLPerf Tiny models live in ../shared/models/ "
            "beside the repository (see its README)"
        )
    report = hil.profile(path, board, runs=2, warmup=1, seed=0, progress=False)
    check_report(report, load_tflite(path), board, 2, record_property)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_model(
    path: Path, board: str, record_property: Callable[[str, object], None]
) -> None:
    report = hil.profile(path, board, runs=2, warmup=1, seed=0, progress=False)
    check_report(report, load_tflite(path), board, 2, record_property)


def test_examples_are_there() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"digits-dscnn.tflite", "digits-mobilenetv3.tflite"} <= names
    assert all(p.stat().st_size < 300 * 1024 for p in EXAMPLES)


def test_given_inputs_are_checked_and_used(record_property: Callable[[str, object], None]) -> None:
    """A real digit through the API (batch dimension left out), and a wrong shape refused."""
    from sklearn.datasets import load_digits

    from hil.reference import input_specs

    path = REPO / "examples" / "models" / "digits-dscnn.tflite"
    (spec,) = input_specs(path)
    image = load_digits().images[0] / 16.0
    x = np.clip(np.round(image / spec.scale) + spec.zero_point, -128, 127).astype(np.int8)
    report = hil.profile(path, "qemu-m4", runs=1, warmup=0, inputs=[x[:, :, None]], progress=False)
    check_report(report, load_tflite(path), "qemu-m4", 1, record_property)
    with pytest.raises(InputError, match=r"shape \[8, 8\].*int8\[1, 8, 8, 1\]"):
        hil.profile(path, "qemu-m4", runs=1, inputs=[x], progress=False)
