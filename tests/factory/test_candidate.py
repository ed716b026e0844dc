"""Candidates run in a child process: crashes, timeouts and NaN come back as failed results."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from optimizer.factory.candidate import run_candidate, run_isolated
from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import register_dataset


def test_a_crashing_child_is_reported_not_raised() -> None:
    outcome = run_isolated(os.abort)
    assert not outcome.ok and "SIGABRT" in outcome.reason


def test_a_child_that_exits_early_is_reported() -> None:
    outcome = run_isolated(os._exit, 3)
    assert not outcome.ok and "exited with code 3" in outcome.reason


def test_an_exception_in_the_child_carries_its_message() -> None:
    outcome = run_isolated(int, "not a number")
    assert not outcome.ok and outcome.reason.startswith("ValueError: invalid literal")


def test_a_hung_child_is_killed_at_the_timeout() -> None:
    start = time.monotonic()
    outcome = run_isolated(time.sleep, 60, timeout_s=2)
    assert not outcome.ok and "timed out after 2 s" in outcome.reason
    assert time.monotonic() - start < 30


def test_a_child_result_comes_back() -> None:
    outcome = run_isolated(divmod, 17, 5)
    assert outcome.ok and outcome.value == (3, 2)


@pytest.mark.slow
def test_a_failing_candidate_is_a_failed_record(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((40, 8, 8, 1))
    x[5, 2, 2, 0] = np.nan
    register_dataset("with-nan", x=x, y=np.arange(40) % 2, replace=True)
    cfg = CandidateConfig("with-nan", hparams={"train.epochs": 1})
    result = run_candidate(cfg, tmp_path, timeout_s=300)
    assert not result.ok and "NaN" in result.reason
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and "NaN" in record["reason"]
    assert record["hyperparameters"]["train.epochs"] == 1
    assert not (tmp_path / "model.tflite").exists()
