"""Every family x pruning mode x quantization mode on a tiny budget, in this process (TF is
imported once; the child-process wrapper is tested in test_candidate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from optimizer.factory import pipeline
from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import Splits, load_dataset
from optimizer.factory.quantization import unsupported_ops

pytestmark = pytest.mark.slow

#: int8 accuracy may trail float by this much on the 269 digits test images (a tiny model
#: after one epoch sits on steep parts of the loss, so this is looser than a trained model's).
INT8_TOLERANCE = 0.06

TINY = {"model.stages": 2, "model.base_width": 8, "train.epochs": 2, "train.learning_rate": 0.01}


def make(tmp_path: Path, dataset: str = "digits", **hp: object) -> dict:
    cfg = CandidateConfig(dataset, 0, {**TINY, **hp})
    return pipeline.make_candidate(cfg, load_dataset(dataset, 0), tmp_path, lambda _: None)


@pytest.mark.parametrize("quant", ["ptq", "qat"])
@pytest.mark.parametrize("prune", ["none", "structured", "unstructured"])
@pytest.mark.parametrize("family", ["resnet", "mobilenetv3"])
def test_every_combination_makes_a_bench_ready_int8_model(
    tmp_path: Path, family: str, prune: str, quant: str
) -> None:
    hp = {"model.family": family, "pruning.mode": prune, "pruning.finetune_epochs": 1,
          "quantization.mode": quant, "quantization.qat_epochs": 1}
    if family == "mobilenetv3":
        hp["model.expansion"] = 2.0
    r = make(tmp_path, **hp)
    assert (tmp_path / "model.tflite").read_bytes()[4:8] == b"TFL3"
    assert unsupported_ops(r["ops"]) == []
    for split in ("val", "test"):
        assert r[f"{split}_accuracy_float"] > 0.5  # it learned something
        assert abs(r[f"{split}_accuracy_int8"] - r[f"{split}_accuracy_float"]) <= INT8_TOLERANCE
    if prune == "unstructured":
        assert r["weight_sparsity"] == pytest.approx(0.5, abs=0.02)
        assert r["params"] == r["params_before_pruning"]  # zeros are still stored


@pytest.mark.parametrize("criterion", ["l1", "l2", "activation", "gradient"])
def test_structured_pruning_at_half_halves_params_and_macs(tmp_path: Path, criterion: str) -> None:
    dense = make(tmp_path / "dense", **{"train.epochs": 1})
    pruned = make(tmp_path / "pruned", **{
        "train.epochs": 1, "pruning.mode": "structured", "pruning.criterion": criterion,
        "pruning.sparsity": 0.5, "pruning.finetune_epochs": 0})
    assert dense["params"] == pruned["params_before_pruning"]
    for key in ("params", "macs", "flash_bytes_estimate"):
        assert 0.4 < pruned[key] / dense[key] < 0.65, key
    assert [h * 2 for h in pruned["hidden_widths"]] == dense["hidden_widths"]


def test_time_series_mobilenet_gradual_pruning(tmp_path: Path) -> None:
    r = make(tmp_path, "basic_motions", **{
        "model.family": "mobilenetv3", "train.epochs": 10, "pruning.mode": "structured",
        "pruning.schedule": "gradual", "pruning.sparsity": 0.5, "pruning.finetune_epochs": 4})
    assert unsupported_ops(r["ops"]) == [] and "DEPTHWISE_CONV_2D" in r["ops"]
    assert r["params"] < 0.65 * r["params_before_pruning"]


def test_same_config_and_seed_give_the_same_record(tmp_path: Path) -> None:
    hp = {"pruning.mode": "unstructured", "pruning.finetune_epochs": 1}
    a = make(tmp_path / "a", **hp)
    b = make(tmp_path / "b", **hp)
    a.pop("training_seconds")
    b.pop("training_seconds")
    assert a == b
    assert (tmp_path / "a/model.tflite").read_bytes() == (tmp_path / "b/model.tflite").read_bytes()


def test_the_test_split_is_never_used_to_train_and_is_reported_apart(tmp_path: Path) -> None:
    """Validation accuracy (what a search selects on) and test accuracy are separate fields,
    and the test split reaches nothing but the test accuracies: with its labels scrambled,
    the model bytes and the validation accuracies stay exactly the same."""
    data = load_dataset("digits", 0)
    scrambled = Splits(**{**data.__dict__, "y_test": (data.y_test + 1) % data.num_classes})
    cfg = CandidateConfig("digits", 0, {**TINY, "pruning.mode": "structured",
                                        "pruning.criterion": "gradient",
                                        "pruning.finetune_epochs": 1})
    a = pipeline.make_candidate(cfg, data, tmp_path / "a", lambda _: None)
    b = pipeline.make_candidate(cfg, scrambled, tmp_path / "b", lambda _: None)
    assert "accuracy_float" not in a and "accuracy_int8" not in a
    assert (tmp_path / "a/model.tflite").read_bytes() == (tmp_path / "b/model.tflite").read_bytes()
    for key in ("val_accuracy_float", "val_accuracy_int8"):
        assert a[key] == b[key] > 0.5, key
    for key in ("test_accuracy_float", "test_accuracy_int8"):
        assert a[key] > 0.5 > b[key], key  # scrambled labels: the test figures collapse
