"""Tolerances ("+2%", "+1 KiB", "0", ...) and the regression verdicts they give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.check.baseline import (
    SCHEMA,
    BaselineError,
    compare,
    load_baseline,
    parse_tolerance,
    parse_tolerances,
)


@pytest.mark.parametrize(
    ("metric", "text", "field", "percent", "amount"),
    [
        ("latency", "+2%", "latency_counts", 2.0, 0.0),
        ("latency", "0", "latency_counts", None, 0.0),
        ("latency", 1000, "latency_counts", None, 1000.0),
        ("latency", "+500 instructions", "latency_counts", None, 500.0),
        ("latency", "+0.05 ms", "latency_ms", None, 0.05),
        ("latency", "+50us", "latency_ms", None, 0.05),
        ("ram", "+1 KiB", "ram_bytes", None, 1024.0),
        ("ram", "+1kb", "ram_bytes", None, 1024.0),
        ("flash", "+0.5 MiB", "flash_bytes", None, 512 * 1024.0),
        ("flash", "+3.5%", "flash_bytes", 3.5, 0.0),
        ("flash", "256", "flash_bytes", None, 256.0),
        ("lsb", "1", "max_abs_diff", None, 1.0),
    ],
)
def test_tolerance_forms(
    metric: str, text: object, field: str, percent: float | None, amount: float
) -> None:
    tol = parse_tolerance(metric, text)
    assert (tol.field, tol.percent, tol.amount) == (field, percent, pytest.approx(amount))


@pytest.mark.parametrize(
    ("metric", "text"),
    [("latency", "-2%"), ("ram", "+2 ms"), ("lsb", "+5%"), ("flash", "lots"), ("ram", True)],
)
def test_bad_tolerances_say_what_is_allowed(metric: str, text: object) -> None:
    with pytest.raises(ValueError, match=r"must be|does not fit"):
        parse_tolerance(metric, text)


def _figures(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "timing_source": "qemu-icount",
        "latency_counts": 1_000_000,
        "latency_ms": 15.625,
        "ram_bytes": 20_000,
        "flash_bytes": 50_000,
        "max_abs_diff": 0.0,
    }
    return {**base, **changes}


def test_growth_within_tolerance_passes_and_beyond_it_regresses() -> None:
    tols = parse_tolerances({"latency": "+2%", "flash": "+1 KiB"})
    old = _figures()
    within = compare(old, _figures(latency_counts=1_020_000, flash_bytes=51_024), tols)
    assert not any(c.regressed for c in within)
    beyond = compare(old, _figures(latency_counts=1_020_001, flash_bytes=51_025), tols)
    assert [c.metric for c in beyond if c.regressed] == ["latency", "flash"]
    (lat,) = [c for c in beyond if c.metric == "latency"]
    assert lat.field == "latency_counts" and lat.percent == pytest.approx(2.0001)
    assert lat.describe() == "latency +2.0% (1,000,000 -> 1,020,001 counts; tolerance +2%)"


def test_zero_tolerance_fails_on_a_single_instruction_and_improvements_pass() -> None:
    tols = parse_tolerances({})
    assert [c.regressed for c in compare(_figures(), _figures(latency_counts=1_000_001), tols)] == [
        True,
        False,
        False,
        False,
    ]
    better = _figures(latency_counts=900_000, ram_bytes=1, flash_bytes=1)
    assert not any(c.regressed for c in compare(_figures(), better, tols))


def test_another_timing_source_is_compared_in_ms() -> None:
    tols = parse_tolerances({"latency": "+5%"})
    old = _figures(timing_source="dwt-cyccnt", latency_counts=10)
    (lat, *_) = compare(old, _figures(latency_ms=16.0), tols)
    assert lat.field == "latency_ms" and not lat.regressed
    (lat, *_) = compare(old, _figures(latency_ms=17.0), tols)
    assert lat.regressed


def test_baseline_file_errors(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="does not exist; write one with"):
        load_baseline(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"board": "qemu-m4"}))
    with pytest.raises(BaselineError, match="is not a hil check baseline"):
        load_baseline(bad)
    bad.write_text(json.dumps({"schema": SCHEMA, "results": [{"figures": {}}]}))
    with pytest.raises(BaselineError, match=r"results\[0\] has no string 'id'"):
        load_baseline(bad)
