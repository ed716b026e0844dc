"""benchmarks/backends.py's derived figures (no device): issue 11's ratios own / TFLM with
CMSIS-NN kernels, their geometric means, and the tables re-derived from the committed JSON."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_backends", REPO / "benchmarks" / "backends.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(backend: str, counts: int, flash: int, model_ram: int, **kw: object) -> dict:
    return {
        "backend": backend, "latency_counts": counts, "counts_per_mac": counts / 1000,
        "flash_bytes": flash, "ram_bytes": model_ram + 4000, "model_ram_bytes": model_ram,
        "arena_bytes": 512, "arena_used_bytes": None, "max_abs_diff": 0.0, "check": "passed",
        "macs": 1000, **kw,
    }  # fmt: skip


def _record(model: str, board: str, own: tuple[int, int, int], tflm: tuple[int, int, int],
            input_bytes: int = 100) -> dict:  # fmt: skip
    return {
        "model": model, "file": f"{model}.tflite", "board": board, "input_bytes": input_bytes,
        "backends": {"own": _report("own", *own), "tflm-cmsis": _report("tflm", *tflm)},
        "failed": {},
    }  # fmt: skip


def test_ratios_compare_own_with_tflm_without_the_benchs_input_copies(bench: ModuleType) -> None:
    rec = _record("m", "qemu-m4", own=(900, 7000, 1500), tflm=(1000, 10000, 2100))
    r = bench.ratios(rec)
    assert r["instr"] == pytest.approx(0.9)
    assert r["flash"] == pytest.approx(0.7)
    assert r["ram"] == pytest.approx(1500 / 2000)  # TFLM's 2100 less its 100 input bytes
    del rec["backends"]["tflm-cmsis"]
    assert bench.ratios(rec) is None


def test_geometric_means_leave_out_the_reference_layer(bench: ModuleType) -> None:
    records = [
        _record("reference_conv", "qemu-m4", own=(100, 1, 1), tflm=(1000, 1, 1)),
        _record("a", "qemu-m4", own=(400, 1, 1), tflm=(1000, 1, 101)),
        _record("b", "qemu-m4", own=(900, 1, 1), tflm=(1000, 1, 101)),
        _record("a", "qemu-m0", own=(1000, 1, 1), tflm=(1000, 1, 101)),
    ]
    rows = {(m, b): r for m, b, r in bench.ratio_rows(records)}
    assert rows[("reference_conv", "qemu-m4")]["instr"] == pytest.approx(0.1)
    assert rows[("geometric mean (2 models)", "qemu-m4")]["instr"] == pytest.approx(0.6)
    both = rows[("geometric mean (3 pairs)", "both")]["instr"]
    assert both == pytest.approx(math.exp((math.log(0.4) + math.log(0.9)) / 3))
    text = bench.comparison_markdown(records)
    assert "| a | qemu-m4 | 0.40 yes | 1.00 no | 1.00 no |" in text


def test_tables_are_re_derived_from_the_json(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "schema_version": 1, "variants": ["own", "tflm-cmsis"], "runs": 1,
        "records": [_record("a", "qemu-m0", own=(800, 9000, 700), tflm=(1000, 10000, 1100))],
    }  # fmt: skip
    path = tmp_path / "backends.json"
    path.write_text(json.dumps(data))
    assert bench.main(["--from-json", str(path), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "| a | 1,000 | own | 800 | 0.80 | 9,000 | 4,700 | 700 | 512 | 0 |" in out
    assert "|  |  | tflm-cmsis | 1,000 | 1.00 | 10,000 | 5,100 | 1,000 | 512 | 0 |" in out
    assert "| a | qemu-m0 | 0.80 yes | 0.70 yes | 0.90 no |" in out
