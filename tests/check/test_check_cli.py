"""`hil check` through hil.cli.main with a scripted hil.profile: exit codes and every output.

The same command on the real bench (QEMU) is in test_check_e2e.py; these cover the outcomes
a real run cannot produce on demand (timeouts, errors) and run in a second.
"""

from __future__ import annotations

import importlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import junit_schema
import pytest
from check_support import ScriptedProfile, timeout, write_checks

from hil import cli
from hil.check.result import EXIT_BUDGET, EXIT_ERROR, EXIT_OK, EXIT_REGRESSION

profile_module = importlib.import_module("hil.profile")

CHECKS = """
baseline = "baseline.json"
[tolerance]
latency = "+2%"
flash = "+1 KiB"

[[check]]
model = "models/digits-dscnn.tflite"
boards = ["qemu-m4", "qemu-m0"]
max_latency_ms = 5
max_ram_kb = 12
"""


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    return write_checks(tmp_path, CHECKS)


def use(monkeypatch: pytest.MonkeyPatch, fake: ScriptedProfile) -> ScriptedProfile:
    monkeypatch.setattr(profile_module, "profile", fake)
    return fake


def run(checks: Path, *extra: str) -> tuple[int, dict, ET.Element, str]:
    out = checks.parent / "out"
    code = cli.main(
        [
            "check",
            str(checks),
            "--junit",
            str(out / "check.xml"),
            "--json",
            str(out / "check.json"),
            "--markdown",
            str(out / "check.md"),
            *extra,
        ]
    )
    root = ET.parse(out / "check.xml").getroot()
    assert junit_schema.validate(root) == []
    return (
        code,
        json.loads((out / "check.json").read_text()),
        root,
        (out / "check.md").read_text(),
    )


def props(root: ET.Element, case_id: str) -> dict[str, str]:
    name, board = case_id.split("/")
    suite = root.find(f"testsuite[@name='hil.check.{name}.{board}']")
    assert suite is not None, case_id
    names = [p.get("name") for p in suite.iter("property")]
    assert len(names) == len(set(names)), "property names repeat"
    return {p.get("name"): p.get("value") for p in suite.iter("property")}  # type: ignore[misc]


def test_all_pass(
    checks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, ScriptedProfile())
    code, doc, root, md = run(checks)
    assert code == EXIT_OK
    assert doc["exit_code"] == 0 and doc["summary"]["passed"] == 2
    assert [c.get("name") for c in root.iter("testcase")] == ["qemu-m4", "qemu-m0"]
    assert {c.get("classname") for c in root.iter("testcase")} == {"hil.check.digits-dscnn"}
    p = props(root, "digits-dscnn/qemu-m4")
    assert p["latency_ms"] == "4.6875" and p["flash_bytes"] == "40000"
    assert p["case"] == "digits-dscnn/qemu-m4" and p["model_file"] == "models/digits-dscnn.tflite"
    assert p["status"] == "passed" and p["flaky"] == "false" and p["budget.max_ram_kb"] == "12.0"
    assert md.startswith("### hil check: ✅ 2 passed of 2\n")
    assert "| digits-dscnn | qemu-m4 | ✅ passed | 4.688 | 11.72 | 39.06 | 0 |" in md
    out = capsys.readouterr()
    assert "digits-dscnn" in out.out and "qemu-m0" in out.out  # the table
    assert "no baseline at" in out.err and "[2/2]" in out.err


def test_a_failed_budget_exits_3_and_says_which_budget_and_by_how_much(
    checks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, ScriptedProfile({("digits-dscnn", "qemu-m0"): [{"ram_bytes": 12_800}]}))
    code, doc, root, md = run(checks)
    assert code == EXIT_BUDGET
    (failure,) = root.iter("failure")
    message = "RAM 12.50 KiB is over max_ram_kb = 12 KiB by 0.50 KiB (+4.2%)"
    assert failure.get("type") == "budget" and failure.get("message") == message
    assert root.get("failures") == "1" and root.get("tests") == "2"
    assert f"- `digits-dscnn/qemu-m0`: {message}" in md
    assert "| digits-dscnn | qemu-m0 | ❌ failed |" in md
    assert doc["results"][1]["problems"][0]["key"] == "max_ram_kb"


def test_flaky_is_reported_in_junit_table_and_markdown(
    checks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use(monkeypatch, ScriptedProfile({("digits-dscnn", "qemu-m4"): [timeout(), {}]}))
    code, doc, root, md = run(checks)
    assert code == EXIT_OK
    case = root.find(".//testcase[@name='qemu-m4']")
    assert case is not None and case.find("failure") is None and case.find("error") is None
    flaky = case.find("flakyError")
    assert flaky is not None and flaky.get("type") == "TargetTimeout"
    assert "no answer from the target" in (flaky.findtext("stackTrace") or "")
    p = props(root, "digits-dscnn/qemu-m4")
    assert p["flaky"] == "true" and p["attempts"] == "2" and p["status"] == "flaky"
    assert "⚠️ flaky" in md and "(1 flaky)" in md
    assert doc["results"][0]["flaky"] is True and doc["results"][0]["status"] == "flaky"
    assert "flaky" in capsys.readouterr().out


def test_two_timeouts_are_an_error_with_a_rerun_element(
    checks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, ScriptedProfile({("digits-dscnn", "qemu-m0"): [timeout()]}))
    code, _, root, md = run(checks)
    assert code == EXIT_ERROR
    case = root.find(".//testcase[@name='qemu-m0']")
    assert case is not None
    error = case.find("error")
    assert error is not None and error.get("type") == "TargetTimeout"
    assert case.find("rerunError") is not None and case.find("flakyError") is None
    assert root.get("errors") == "1"
    assert "💥 error" in md


def test_baseline_regression_exits_7_with_old_new_and_change(
    checks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, ScriptedProfile())
    assert cli.main(["check", str(checks), "--update-baseline", "--quiet"]) == EXIT_OK
    baseline = checks.parent / "baseline.json"
    assert json.loads(baseline.read_text())["schema"] == "hil-check/1"

    slower = {"latency_counts": 309_000, "latency_ms": 4.828125, "flash_bytes": 41_100}
    other_compiler = {"compiler_version": "arm-none-eabi-gcc 13.2"}
    doc = json.loads(baseline.read_text())
    doc["results"][1]["figures"]["compiler_version"] = "arm-none-eabi-gcc 12.2"
    baseline.write_text(json.dumps(doc))
    script = {("digits-dscnn", "qemu-m4"): [slower], ("digits-dscnn", "qemu-m0"): [other_compiler]}
    use(monkeypatch, ScriptedProfile(script))
    code, doc, root, md = run(checks)
    assert code == EXIT_REGRESSION
    (failure,) = root.iter("failure")
    assert failure.get("type") == "regression"
    assert "latency +3.0% (300,000 -> 309,000 counts; tolerance +2%)" in failure.get("message", "")
    assert "flash" in failure.get("message", "")  # +1,100 B > +1 KiB
    row = next(line for line in md.splitlines() if line.startswith("| digits-dscnn | qemu-m4"))
    assert "📈 regressed" in row
    assert "4.688 → 4.828 (+3.0% ❌)" in row
    assert "39.06 → 40.14 (+2.8% ❌)" in row
    assert "11.72 → 11.72 (+0.0%)" in row
    assert "Compared with the baseline" in md and "latency +2%" in md
    assert "- `digits-dscnn/qemu-m0`: the compiler changed since the baseline" in md
    unchanged = doc["results"][1]["baseline"]["changes"]["latency"]
    assert unchanged["change"] == 0 and unchanged["regressed"] is False
    p = props(root, "digits-dscnn/qemu-m4")
    assert p["baseline.latency.regressed"] == "true"
    # The same figures with --update-baseline are accepted and become the new baseline.
    assert cli.main(["check", str(checks), "--update-baseline", "--quiet"]) == EXIT_OK
    assert cli.main(["check", str(checks), "--quiet"]) == EXIT_OK


def test_update_baseline_keeps_the_old_file_when_a_case_gave_no_figures(
    checks: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = checks.parent / "baseline.json"
    baseline.write_text("old")
    use(monkeypatch, ScriptedProfile({("digits-dscnn", "qemu-m0"): [timeout()]}))
    assert cli.main(["check", str(checks), "--update-baseline", "--quiet"]) == EXIT_ERROR
    assert baseline.read_text() == "old"
    assert "not written: digits-dscnn/qemu-m0 gave no figures" in capsys.readouterr().err


def test_usage_errors_are_messages_not_tracebacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = use(monkeypatch, ScriptedProfile())
    body = '[[check]]\nmodel = "models/digits-dscnn.tflite"\n'
    path = write_checks(tmp_path, body)
    assert cli.main(["check", str(path), "--update-baseline"]) == EXIT_ERROR
    assert "--update-baseline needs a file to write" in capsys.readouterr().err
    assert cli.main(["check", str(path), "--baseline", str(tmp_path / "no.json")]) == EXIT_ERROR
    assert "baseline" in capsys.readouterr().err
    bad = write_checks(tmp_path, body + "max_ram_kb = 0\n", name="bad.toml")
    assert cli.main(["check", str(bad)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "'max_ram_kb' must be a positive number" in err and "Traceback" not in err
    assert fake.calls == []  # nothing ran
    with pytest.raises(SystemExit) as info:
        cli.main(["check", str(path), "--jobs", "0"])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (
            '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            '<testcase name="c"><properties/></testcase></testsuite></testsuites>',
            "unexpected child <properties>",
        ),
        (
            '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            '<testcase classname="k"/></testsuite></testsuites>',
            "missing attribute(s) ['name']",
        ),
        (
            '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            '<testcase name="c"><failure message="m"/></testcase></testsuite></testsuites>',
            "failures=0 but 1 such test case(s)",
        ),
        (
            '<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            '<testcase name="c"><flakyError message="m"/></testcase></testsuite></testsuites>',
            "<flakyError>: missing attribute(s) ['type']",
        ),
        (
            '<testsuites skipped="0"><testsuite name="s" tests="0" failures="0" errors="0"/>'
            "</testsuites>",
            "attribute(s) ['skipped'] not in the schema",
        ),
        (
            '<testsuites><testsuite name="s" tests="0" failures="0" errors="0" time="1s"/>'
            "</testsuites>",
            "does not match the schema's time pattern",
        ),
    ],
)
def test_the_junit_validator_rejects_what_the_schema_does(xml: str, problem: str) -> None:
    problems = junit_schema.validate(ET.fromstring(xml))
    assert any(problem in p for p in problems), problems
