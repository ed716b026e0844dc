"""The zoo converts to the graphs it claims: otherwise the end-to-end tests test something else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from zoo import ZOO, sample_inputs

from hil.importer import load_tflite
from hil.reference import reference_outputs


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_has_the_intended_ops_and_io(name: str, zoo_model: Callable[[str], Path]) -> None:
    graph = load_tflite(zoo_model(name), check_support=False)
    assert {op.op for op in graph.operators} == ZOO[name].ops
    edge_dtypes = {graph.tensor(t).dtype for t in graph.inputs + graph.outputs}
    assert edge_dtypes == ({"float32"} if ZOO[name].float_io else {"int8"})


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_is_accepted_by_the_importer(name: str, zoo_model: Callable[[str], Path]) -> None:
    load_tflite(zoo_model(name))  # raises UnsupportedOpError naming what the bench lacks


@pytest.mark.parametrize("name", ["resnet", "mobilenet_v3", "ds_cnn", "float_io"])
def test_whole_networks_answer_differently_for_different_inputs(
    name: str, zoo_model: Callable[[str], Path]
) -> None:
    """An output that ignores its input would hide any arithmetic error in the comparison."""
    model = zoo_model(name)
    outs = [reference_outputs(model, sample_inputs(model, seed))[0] for seed in range(3)]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
