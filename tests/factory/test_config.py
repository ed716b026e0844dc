"""Configs from TOML and the dataset registry (no TensorFlow: fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import available_datasets, load_dataset, register_dataset
from optimizer.factory.errors import FactoryError
from optimizer.space import SpaceError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["digits-resnet", "mnist-resnet", "motions-mobilenet"])
def test_examples_are_valid(name: str) -> None:
    cfg = CandidateConfig.from_toml(EXAMPLES / f"{name}.toml")
    assert cfg.dataset in available_datasets()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[data]\ndataset = "digits"\n[pruning]\nsparsity = 1.5\n', r"pruning.sparsity = 1.5"),
        ('[data]\ndataset = "digits"\n[model]\nfamliy = "resnet"\n', "unknown hyperparameter"),
        ('[data]\ndataset = "digits"\n[train]\nepochs = "ten"\n', "train.epochs = 'ten'"),
        ('[model]\nstages = 2\n', r"\[data\] needs dataset"),
        ('dataset = "digits"\n', "must be a table"),
        ('[data\n', "not valid TOML"),
    ],
)
def test_bad_config_is_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(FactoryError, match=message):
        CandidateConfig.from_toml(path)


def test_missing_file_and_bad_seed() -> None:
    with pytest.raises(FactoryError, match="does not exist"):
        CandidateConfig.from_toml("/nonexistent/x.toml")
    with pytest.raises(FactoryError, match=r"train\.seed"):
        CandidateConfig("digits", seed=-1)
    with pytest.raises(SpaceError):
        CandidateConfig("digits", hparams={"pruning.mode": "random"})


def test_splits_are_fixed_per_seed_and_disjoint() -> None:
    a, b, c = load_dataset("digits", 0), load_dataset("digits", 0), load_dataset("digits", 1)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert a.input_shape == (8, 8, 1) and a.num_classes == 10
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert set(np.unique(a.y_val)) == set(range(10))  # stratified


def test_user_dataset_from_arrays_and_errors() -> None:
    rng = np.random.default_rng(0)
    register_dataset("tiny-user", x=rng.random((60, 20, 3)), y=np.repeat(["a", "b", "c"], 20),
                     replace=True)
    s = load_dataset("tiny-user", 3)
    assert s.input_shape == (20, 3) and s.num_classes == 3
    with pytest.raises(FactoryError, match="already registered"):
        register_dataset("tiny-user", x=np.zeros((4, 2)), y=np.arange(4))
    with pytest.raises(FactoryError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(FactoryError, match="cannot import"):
        load_dataset("no_such_module_xyz:load")


def test_train_command_refuses_a_bad_config_before_any_work(tmp_path: Path) -> None:
    import argparse

    from optimizer.factory.cli import register

    parser = argparse.ArgumentParser(prog="hil")
    register(parser.add_subparsers())
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndataset = "digits"\n[model]\nstages = 9\n')
    args = parser.parse_args(["train", str(bad), "--out", str(tmp_path / "run")])
    with pytest.raises(FactoryError, match=r"model\.stages = 9"):
        args.func(args)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["digits", "mnist5000", "basic_motions"])
def test_every_builtin_dataset_has_a_validation_split_with_every_class(name: str) -> None:
    s = load_dataset(name, 0)
    classes = set(range(s.num_classes))
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert len(x) == len(y) > 0
        assert set(np.unique(y)) == classes
    # Validation is its own split, not a copy of the test split.
    assert not (len(s.x_val) == len(s.x_test) and np.array_equal(s.x_val, s.x_test))


def test_a_class_too_small_for_every_split_is_refused() -> None:
    rng = np.random.default_rng(0)
    y = np.array([0] * 20 + [1] * 20 + [2] * 2)
    register_dataset("tiny-class", x=rng.random((42, 8, 3)), y=y, replace=True)
    with pytest.raises(FactoryError, match=r"class 2 has only 2 samples.*training split"):
        load_dataset("tiny-class")
