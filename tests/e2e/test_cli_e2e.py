"""End to end through the `hil` console script, as a user or a CI job runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hil.reference import input_specs
from hil.report import JSON_CONTRACT_KEYS

pytestmark = pytest.mark.qemu

REPO = Path(__file__).resolve().parents[2]
DSCNN = REPO / "examples" / "models" / "digits-dscnn.tflite"
HIL = Path(sys.executable).with_name("hil")


def hil_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HIL), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO
    )


@pytest.fixture
def digit_npy(tmp_path: Path) -> Path:
    """A real digit, quantized for the example model's input, saved as a user would."""
    from sklearn.datasets import load_digits

    (spec,) = input_specs(DSCNN)
    x = np.round(load_digits().images[7] / 16.0 / spec.scale) + spec.zero_point
    path = tmp_path / "digit.npy"
    np.save(path, np.clip(x, -128, 127).astype(np.int8).reshape(spec.shape))
    return path


def test_profile_with_input_and_json(digit_npy: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = hil_cli(
        "profile",
        DSCNN,
        "--board",
        "qemu-m0",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--input",
        digit_npy,
        "--json",
        out,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    missing = JSON_CONTRACT_KEYS - report.keys()
    assert not missing, f"JSON report lacks {sorted(missing)}"
    assert report["board"] == "qemu-m0" and report["model"] == "digits-dscnn"
    assert report["max_abs_diff"] <= 1
    assert report["latency_counts"] > 0 and report["stack_bytes"] > 0
    assert all({"op", "macs", "counts"} <= set(layer) for layer in report["layers"])
    assert sum(layer["macs"] for layer in report["layers"]) == report["macs"]


def test_profile_refuses_an_input_of_the_wrong_shape(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 8, 8), np.int8))
    proc = hil_cli("profile", DSCNN, "--board", "qemu-m4", "--input", bad, "--quiet")
    assert proc.returncode == 1  # a HilError, not a budget (3) or mismatch (4) verdict
    assert "Traceback" not in proc.stderr
    assert "bad.npy" in proc.stderr and "int8[1, 8, 8, 1]" in proc.stderr
