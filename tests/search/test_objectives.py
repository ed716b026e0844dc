"""From measured metrics to what the optimizer is told: feasible, infeasible, too large, failed."""

from __future__ import annotations

import pytest

from optimizer.search.evaluate import parse_needs
from optimizer.search.objectives import (
    Objective,
    board_constraints,
    judge,
    metric_values,
    parse_constraints,
)

OBJECTIVES = [
    Objective("accuracy", "accuracy", None, "max", "", 0.0, 1.0),
    Objective("latency_ms@b", "latency_ms", "b", "min", "ms", 50.0, 0.0),
]
CONSTRAINTS = [*board_constraints([("b", 1000, 500)]), *parse_constraints(["latency_ms <= 50"],
                                                                          ["b"])]
RECORD = {"val_accuracy_int8": 0.8, "test_accuracy_int8": 0.7, "macs": 10, "params": 5}


def test_a_measured_trial_is_told_normalised_values() -> None:
    values = metric_values(RECORD, {"b": {"flash_bytes": 600, "ram_bytes": 100,
                                          "latency_ms": 10.0, "macs": 12, "params": 6}})
    assert values["accuracy"] == 0.8 and values["test_accuracy"] == 0.7
    assert values["macs"] == 12  # the bench's count wins over the factory's
    v = judge(values, OBJECTIVES, CONSTRAINTS, complete=True)
    assert v.feasible and v.imputed == []
    assert v.told_objectives == pytest.approx([0.2, 0.2])
    assert v.told_constraints == pytest.approx([-0.4, -0.8, -0.8])
    slow = judge({**values, "latency_ms@b": 60.0}, OBJECTIVES, CONSTRAINTS, complete=True)
    assert not slow.feasible and slow.told_constraints[2] == pytest.approx(0.2)


def test_test_accuracy_never_becomes_the_accuracy_objective() -> None:
    values = metric_values({"test_accuracy_int8": 0.9}, {})
    assert "accuracy" not in values
    v = judge(values, OBJECTIVES, CONSTRAINTS, complete=True)
    assert v.told_objectives is None  # told as a failure, not with the test accuracy


def test_a_model_too_large_is_infeasible_with_its_measured_need() -> None:
    values = metric_values(RECORD, {}, needs={"b": {"flash_bytes": 1500}})
    v = judge(values, OBJECTIVES, CONSTRAINTS, complete=False,
              worst_objectives=[0.4, 0.7], worst_constraints=[-0.1, -0.2, 0.3])
    assert not v.feasible
    assert v.told_objectives == pytest.approx([0.2, 1.0])  # latency unknown: at least the ref
    assert v.told_constraints == pytest.approx([0.5, 0.0, 0.3])  # flash: the need, 1500/1000-1
    assert v.imputed == ["latency_ms@b", "ram_bytes@b <= 500", "latency_ms@b <= 50"]
    assert v.constraints == {"flash_bytes@b <= 1000": 1500.0}


def test_a_model_too_large_without_a_known_need_is_a_failure() -> None:
    v = judge(metric_values(RECORD, {}, needs={"b": {}}), OBJECTIVES, CONSTRAINTS,
              complete=False)
    assert v.told_objectives is None and not v.feasible


def test_a_non_finite_measurement_is_a_failure() -> None:
    values = metric_values(RECORD, {"b": {"flash_bytes": 1, "ram_bytes": 1,
                                          "latency_ms": float("inf")}})
    assert judge(values, OBJECTIVES, CONSTRAINTS, complete=True).told_objectives is None


def test_needs_are_read_from_the_bench_messages() -> None:
    linker = ("model 'm' does not fit b: flash needs 9,000 bytes but b has 4,096 (4,904 bytes "
              "over); RAM needs 300,000 bytes but b has 262,144 (37,856 bytes over).")
    assert parse_needs(linker) == {"flash_bytes": 9000, "ram_bytes": 300000}
    before = ("model 'm' does not fit: it needs 1,234.5 KiB of weights but b has 1,024 KiB of "
              "flash and a 300.0 KiB activation arena but b has 256 KiB of RAM.")
    assert parse_needs(before) == {"flash_bytes": round(1234.5 * 1024), "ram_bytes": 300 * 1024}
    assert parse_needs("something else") == {}
