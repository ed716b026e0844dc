"""examples/make_models.py keeps working: it trains, converts and writes a model the bench takes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hil.importer import load_tflite

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "make_models.py"


@pytest.mark.slow
def test_make_models_writes_an_importable_int8_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("make_models", SCRIPT)
    assert spec is not None and spec.loader is not None
    make_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_models)

    assert (
        make_models.main(["--only", "digits-dscnn", "--epochs", "2", "--out", str(tmp_path)]) == 0
    )
    graph = load_tflite(tmp_path / "digits-dscnn.tflite")  # raises if an op is unsupported
    assert {graph.tensor(t).dtype for t in graph.inputs + graph.outputs} == {"int8"}
    assert "int8" in capsys.readouterr().out  # the accuracy line
