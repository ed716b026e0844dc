"""`hil check` on the bundled DS-CNN under QEMU (both boards), as a CI job runs it.

Three runs of the console script: passing budgets (writing the baseline), failing budgets, and
a regression against a baseline. The JUnit XML is validated against the structure Jenkins and
GitLab read, and the markdown table's content is checked against the measured figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import junit_schema
import pytest
from check_support import write_checks

pytestmark = pytest.mark.qemu

HIL = Path(sys.executable).with_name("hil")
_TOOLS = ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")

PASSING = """
baseline = "baseline.json"
[tolerance]
latency = "0"
flash = "+1 KiB"

[[check]]
model = "models/digits-dscnn.tflite"
boards = ["qemu-m4", "qemu-m0"]
max_latency_ms = 60
max_ram_kb = 16
max_flash_kb = 32
"""


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: run scripts/setup.sh")


def hil_check(checks: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = checks.parent / "out"
    proc = subprocess.run(
        [
            str(HIL),
            "check",
            str(checks),
            "--junit",
            str(out / "check.xml"),
            "--json",
            str(out / "check.json"),
            "--markdown",
            str(out / "check.md"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=checks.parent,
    )
    files: dict[str, Any] = {}
    if (out / "check.xml").is_file():
        files["xml"] = ET.parse(out / "check.xml").getroot()
        assert junit_schema.validate(files["xml"]) == []
        files["json"] = json.loads((out / "check.json").read_text())
        files["md"] = (out / "check.md").read_text()
    return proc, files


def suite_props(root: ET.Element, board: str) -> dict[str, str]:
    suite = root.find(f"testsuite[@name='hil.check.digits-dscnn.{board}']")
    assert suite is not None
    return {p.get("name", ""): p.get("value", "") for p in suite.iter("property")}


@pytest.fixture(scope="module")
def passing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, Any]]:
    checks = write_checks(tmp_path_factory.mktemp("passing"), PASSING)
    proc, files = hil_check(checks, "--update-baseline")
    return checks, proc, files


def test_passing_budgets_exit_0_with_figures_in_every_report(
    passing: tuple[Path, Any, dict[str, Any]],
) -> None:
    checks, proc, files = passing
    assert proc.returncode == 0, proc.stderr
    root, doc, md = files["xml"], files["json"], files["md"]
    assert root.get("tests") == "2" and root.get("failures") == "0" and root.get("errors") == "0"
    for result in doc["results"]:
        fig = result["figures"]
        assert result["status"] == "passed" and fig["timing_source"] == "qemu-icount"
        assert 0 < fig["latency_ms"] < 60 and 0 < fig["ram_bytes"] < 16 * 1024
        props = suite_props(root, result["board"])
        assert props["latency_counts"] == str(fig["latency_counts"])
        assert props["flash_bytes"] == str(fig["flash_bytes"]) and props["status"] == "passed"
        row = (
            f"| digits-dscnn | {result['board']} | ✅ passed | {fig['latency_ms']:.3f} | "
            f"{fig['ram_bytes'] / 1024:,.2f} | {fig['flash_bytes'] / 1024:,.2f} | "
            f"{fig['max_abs_diff']:g} |"
        )
        assert row in md
    assert md.startswith("### hil check: ✅ 2 passed of 2")
    assert "digits-dscnn" in proc.stdout and "qemu-m0" in proc.stdout  # the table
    baseline = json.loads((checks.parent / "baseline.json").read_text())
    ids = [r["id"] for r in baseline["results"]]
    assert ids == ["digits-dscnn/qemu-m4", "digits-dscnn/qemu-m0"]


def test_failing_budgets_exit_3_and_name_the_budget(
    passing: tuple[Path, Any, dict[str, Any]], tmp_path: Path
) -> None:
    doc = passing[2]["json"]
    m4, m0 = (r["figures"] for r in doc["results"])
    # Budgets just under what the passing run measured: latency on the M4, flash on the M0.
    tight_ms = round(m4["latency_ms"] * 0.9, 1)
    tight_flash = m0["flash_bytes"] // 1024 - 1
    checks = write_checks(
        tmp_path,
        f"""
[[check]]
model = "models/digits-dscnn.tflite"
board = "qemu-m4"
max_latency_ms = {tight_ms}
[[check]]
model = "models/digits-dscnn.tflite"
name = "dscnn-small-flash"
board = "qemu-m0"
max_flash_kb = {tight_flash}
""",
    )
    proc, files = hil_check(checks)
    assert proc.returncode == 3, proc.stderr
    root, md = files["xml"], files["md"]
    assert root.get("failures") == "2"
    failures = {case.get("classname"): case.find("failure") for case in root.iter("testcase")}
    latency = failures["hil.check.digits-dscnn"]
    assert latency is not None and latency.get("type") == "budget"
    over = m4["latency_ms"] - tight_ms
    assert latency.get("message", "").startswith(
        f"latency {m4['latency_ms']:,.3f} ms is over max_latency_ms = {tight_ms:g} ms by "
        f"{over:,.3f} ms"
    )
    flash = failures["hil.check.dscnn-small-flash"]
    assert flash is not None and "is over max_flash_kb" in flash.get("message", "")
    assert "| dscnn-small-flash | qemu-m0 | ❌ failed |" in md
    assert "**Problems**" in md and "max_latency_ms" in md


def test_a_regression_over_the_baseline_exits_7_and_zero_tolerance_holds_on_qemu(
    passing: tuple[Path, Any, dict[str, Any]],
) -> None:
    checks = passing[0]
    baseline_path = checks.parent / "baseline.json"
    baseline = json.loads(baseline_path.read_text())
    # Pretend the baseline's M4 run was 1% faster and its M0 image 2 KiB smaller.
    m4, m0 = (r["figures"] for r in baseline["results"])
    old_counts = round(m4["latency_counts"] / 1.01)
    m4["latency_counts"] = old_counts
    m0["flash_bytes"] -= 2048
    tampered = checks.parent / "tampered.json"
    tampered.write_text(json.dumps(baseline))

    # Against the untouched baseline, a second run repeats every count exactly: tolerance 0.
    proc, files = hil_check(checks)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(not r["baseline"]["changes"]["latency"]["change"] for r in files["json"]["results"])

    proc, files = hil_check(checks, "--baseline", str(tampered))
    assert proc.returncode == 7, proc.stdout + proc.stderr
    root, md = files["xml"], files["md"]
    failures = {c.get("name"): c.find("failure") for c in root.iter("testcase")}
    latency, flash = failures["qemu-m4"], failures["qemu-m0"]
    assert latency is not None and latency.get("type") == "regression"
    assert "latency +1.0%" in latency.get("message", "")
    assert f"{old_counts:,} ->" in latency.get("message", "") and "tolerance 0" in latency.text
    assert flash is not None and "flash" in flash.get("message", "")
    assert "tolerance +1 KiB" in flash.get("message", "")
    row = next(line for line in md.splitlines() if line.startswith("| digits-dscnn | qemu-m4"))
    assert "📈 regressed" in row and "(+1.0% ❌)" in row
    assert "Compared with the baseline `tampered.json`" in md
