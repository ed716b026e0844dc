"""Report: the JSON contract (keys the CLI, CI and optimizer read), verdicts and the table."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from hil.report import JSON_CONTRACT_KEYS, Budgets, LayerReport, Report


def make_report(**changes: object) -> Report:
    fields: dict[str, object] = dict(
        board="qemu-m4",
        model="tiny",
        timing_source="qemu-icount",
        timing_note="instructions executed under QEMU",
        latency_counts=300_000,
        latency_ms=4.6875,
        runs=5,
        warmup=1,
        flash_bytes=40_000,
        ram_bytes=12_000,
        static_ram_bytes=10_000,
        arena_bytes=8_000,
        stack_bytes=2_000,
        macs=100_000,
        params=5_000,
        outputs_exact_rate=1.0,
        max_abs_diff=0.0,
        layers=[
            LayerReport(0, "CONV_2D", (1, 8, 8, 4), 90_000, 200_000),
            LayerReport(1, "FULLY_CONNECTED", (1, 10), 10_000, 100_000),
        ],
    )
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def test_json_holds_the_contract_keys_and_round_trips() -> None:
    d = json.loads(make_report().to_json())
    assert d.keys() >= JSON_CONTRACT_KEYS
    assert d["layers"][0] == {
        "index": 0,
        "op": "CONV_2D",
        "shape": [1, 8, 8, 4],
        "macs": 90_000,
        "counts": 200_000,
        "kernel": "",
        "note": "",
    }
    assert d["outputs_match"] is True and d["within_budget"] is True
    assert d["counts_per_mac"] == 3.0


def test_budget_verdicts() -> None:
    budgets = Budgets.coerce({"max_latency_ms": 4.0, "max_flash_kb": 100})
    verdicts = budgets.verdicts(latency_ms=4.6875, ram_bytes=12_000, flash_bytes=40_000)
    assert [(v.name, v.ok) for v in verdicts] == [("latency", False), ("flash", True)]
    report = make_report(budgets=verdicts)
    assert not report.within_budget
    assert json.loads(report.to_json())["budgets"][0]["measured"] == 4.6875
    assert Budgets.coerce(None).verdicts(1.0, 1, 1) == []
    with pytest.raises(ValueError, match="max_ram"):
        Budgets.coerce({"max_ram": 1})


def test_mismatch_over_one_lsb_is_a_failure_and_nan_stays_valid_json() -> None:
    assert make_report(max_abs_diff=1.0).outputs_match
    assert not make_report(max_abs_diff=2.0).outputs_match
    d = json.loads(make_report(max_abs_diff=float("inf")).to_json())
    assert d["max_abs_diff"] is None and d["outputs_match"] is False


def test_table_shows_summary_and_layer_shares() -> None:
    console = Console(width=140, record=True)
    make_report().print(console)
    text = console.export_text()
    assert "tiny on qemu-m4" in text and "4.688 ms" in text
    assert "66.7%" in text and "33.3%" in text  # share of time per layer
    assert "2.22" in text  # counts per MAC of the conv layer
    assert "instructions executed under QEMU" in text
