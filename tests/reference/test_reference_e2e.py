"""The reference check end to end on QEMU: which reference checked, the fallback to TFLM, the
"not done" path with its exit code, an aborting reference, and the README's Python example run
as a plain script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hil
from hil import cli
from hil.reference import input_specs

pytestmark = [pytest.mark.qemu, pytest.mark.usefixtures("qemu_tools")]

REPO = Path(__file__).resolve().parents[2]
HIL = Path(sys.executable).with_name("hil")


def test_model_litert_refuses_is_profiled_and_checked_by_tflm(axis3_model: Path) -> None:
    report = hil.profile(axis3_model, "qemu-m4", runs=1, warmup=0, progress=False)
    assert (report.check, report.reference) == ("passed", "tflm")
    assert report.outputs_match and report.max_abs_diff <= 1
    assert "checked with TFLM" in report.check_note and "quantized_dimension" in report.check_note
    assert [(c.reference, c.status) for c in report.reference_checks] == [
        ("litert", "not done"),
        ("tflm", "passed"),
    ]
    assert report.latency_counts > report.macs > 0


@pytest.mark.parametrize(
    ("which", "choice", "code", "check", "reference"),
    [
        ("axis3", "litert", cli.EXIT_UNCHECKED, "not done", ""),
        ("axis3", "tflm", cli.EXIT_OK, "passed", "tflm"),
        ("axis3", "both", cli.EXIT_UNCHECKED, "not done", "tflm"),
        ("toycar", "both", cli.EXIT_OK, "passed", "litert+tflm"),
        ("toycar", "auto", cli.EXIT_OK, "passed", "litert"),
    ],
)
def test_reference_choices_on_the_command_line(
    which: str,
    choice: str,
    code: int,
    check: str,
    reference: str,
    axis3_model: Path,
    toycar: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = {"axis3": axis3_model, "toycar": toycar}[which]
    argv = ["profile", str(model), "--runs", "1", "--warmup", "0", "--json", "-", "--quiet"]
    assert cli.main([*argv, "--reference", choice]) == code
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["check"], report["reference"]) == (check, reference)
    assert report["latency_counts"] > 0 and report["flash_bytes"] > 0  # profiled all the same
    asked = ["litert", "tflm"] if choice == "both" else [choice.replace("auto", "litert")]
    assert [c["reference"] for c in report["reference_checks"]] == asked
    if check == "not done":
        assert "outputs NOT checked" in err and "quantized_dimension" in err
        assert "quantized_dimension" in report["check_note"]
    if reference == "":
        assert report["outputs_exact_rate"] is None and report["max_abs_diff"] is None
        assert report["outputs_match"] is False


def test_an_aborting_reference_leaves_the_bench_standing(
    wide_softmax: Path, tmp_path: Path
) -> None:
    """Both interpreters abort (SIGABRT) on this input: once that killed `hil` with exit 134
    and no message. Now the model is profiled, the check is "not done" and says why (exit 6)."""
    (spec,) = input_specs(wide_softmax)
    x = tmp_path / "equal.npy"
    np.save(x, np.full(spec.shape, 5, spec.dtype))
    done = subprocess.run(
        [str(HIL), "profile", str(wide_softmax), "--input", str(x), "--json", "-", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == cli.EXIT_UNCHECKED, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    err = " ".join(done.stderr.split())
    assert "outputs NOT checked" in err and "no reference could run the model" in err
    report = json.loads(done.stdout)
    assert report["check"] == "not done" and report["latency_counts"] > 0
    notes = [c["note"] for c in report["reference_checks"]]
    assert len(notes) == 2 and all("crashed" in n and "SIGABRT" in n for n in notes)


def _readme_python_example() -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"From Python:\s*```python\n(.*?)```", readme, re.S)
    assert match, "README.md has no Python example after 'From Python:'"
    return match.group(1)


def test_readme_python_example_runs_as_a_script(tmp_path: Path) -> None:
    """Saved as a script with no `if __name__ == "__main__":` guard: the reference child must
    not re-run it (multiprocessing's spawn did, and the check then 'crashed')."""
    code = _readme_python_example()
    assert "__main__" not in code and "hil.profile(" in code
    model = REPO / "examples" / "models" / "digits-dscnn.tflite"
    script = tmp_path / "example.py"
    script.write_text(code.replace('"model.tflite"', repr(str(model))))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    latency, ram, flash, diff = done.stdout.split()
    assert float(latency) > 0 and int(ram) > 0 and int(flash) > 0 and float(diff) <= 1
