"""The runner: parallel cases, one model's first case first, retry -> flaky, verdicts."""

from __future__ import annotations

from pathlib import Path

from check_support import ScriptedProfile, timeout, write_checks

from hil.check.config import load_checks
from hil.check.result import (
    EXIT_BUDGET,
    EXIT_ERROR,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_TOO_LARGE,
    EXIT_UNCHECKED,
    exit_code,
)
from hil.check.runner import run_checks
from hil.errors import BuildError, ModelTooLargeError

TWO_BY_TWO = """
[[check]]
model = ["models/digits-dscnn.tflite", "models/digits-mobilenetv3.tflite"]
boards = ["qemu-m4", "qemu-m0"]
max_latency_ms = 5
max_ram_kb = 12
"""


def test_cases_run_in_parallel_but_a_models_first_case_runs_alone(tmp_path: Path) -> None:
    cases = load_checks(write_checks(tmp_path, TWO_BY_TWO)).cases
    fake = ScriptedProfile(delay=0.3)
    results = run_checks(cases, jobs=2, profile=fake)
    assert [r.case.id for r in results] == [c.id for c in cases]  # file order kept
    assert fake.max_running == 2
    for model in ("digits-dscnn", "digits-mobilenetv3"):
        first_end = fake.spans[(model, "qemu-m4")][1]
        assert fake.spans[(model, "qemu-m0")][0] >= first_end  # generated project written once
    assert all(r.status == "passed" for r in results)
    assert fake.calls[0][2] == {"runs": 3, "warmup": 1, "seed": 0}


def test_a_pass_after_a_target_timeout_is_flaky_not_a_plain_pass(tmp_path: Path) -> None:
    cases = load_checks(write_checks(tmp_path, TWO_BY_TWO)).cases
    fake = ScriptedProfile({("digits-dscnn", "qemu-m0"): [timeout(), {}]})
    results = {r.case.id: r for r in run_checks(cases, jobs=1, profile=fake)}
    flaky = results["digits-dscnn/qemu-m0"]
    assert flaky.status == "flaky" and flaky.ok and flaky.measured
    assert [a.error_type for a in flaky.retried] == ["TargetTimeout"]
    assert any("attempt 1 failed and was retried: TargetTimeout" in m for m in flaky.messages())
    assert exit_code(results.values()) == EXIT_OK
    assert results["digits-dscnn/qemu-m4"].status == "passed"


def test_two_timeouts_are_an_error_and_other_errors_are_not_retried(tmp_path: Path) -> None:
    cases = load_checks(write_checks(tmp_path, TWO_BY_TWO)).cases
    fake = ScriptedProfile(
        {
            ("digits-dscnn", "qemu-m0"): [timeout()],
            ("digits-mobilenetv3", "qemu-m4"): [BuildError("building x failed: boom")],
        }
    )
    results = {r.case.id: r for r in run_checks(cases, jobs=2, profile=fake)}
    twice = results["digits-dscnn/qemu-m0"]
    assert twice.status == "error" and twice.error_type == "TargetTimeout"
    assert len(twice.retried) == 1
    build = results["digits-mobilenetv3/qemu-m4"]
    assert build.status == "error" and not build.retried
    assert sum(1 for m, b, _ in fake.calls if (m, b) == ("digits-mobilenetv3", "qemu-m4")) == 1
    assert exit_code(results.values()) == EXIT_ERROR


def test_budget_messages_say_which_budget_and_by_how_much(tmp_path: Path) -> None:
    cases = load_checks(write_checks(tmp_path, TWO_BY_TWO)).cases
    fake = ScriptedProfile(
        {
            ("digits-dscnn", "qemu-m4"): [{"latency_ms": 6.0, "ram_bytes": 13_312}],
            ("digits-mobilenetv3", "qemu-m0"): [{"max_abs_diff": 3.0, "check": "failed"}],
        }
    )
    results = {r.case.id: r for r in run_checks(cases, jobs=2, profile=fake)}
    over = results["digits-dscnn/qemu-m4"]
    assert over.status == "failed" and over.exit_code == EXIT_BUDGET
    assert [p.message for p in over.problems] == [
        "latency 6.000 ms is over max_latency_ms = 5 ms by 1.000 ms (+20.0%)",
        "RAM 13.00 KiB is over max_ram_kb = 12 KiB by 1.00 KiB (+8.3%)",
    ]
    wrong = results["digits-mobilenetv3/qemu-m0"]
    assert wrong.exit_code == EXIT_MISMATCH
    assert "outputs differ from the reference" in wrong.problems[0].message
    assert "by up to 3 LSB, over max_lsb_diff = 1 LSB" in wrong.problems[0].message
    assert exit_code(results.values()) == EXIT_MISMATCH  # a wrong model beats a slow one


def test_a_model_too_large_and_an_unchecked_model(tmp_path: Path) -> None:
    cases = load_checks(write_checks(tmp_path, TWO_BY_TWO)).cases
    fake = ScriptedProfile(
        {
            ("digits-dscnn", "qemu-m0"): [ModelTooLargeError("FLASH needs 3 MB")],
            ("digits-mobilenetv3", "qemu-m0"): [
                {"check": "not done", "check_note": "no reference could run it"}
            ],
        }
    )
    results = {r.case.id: r for r in run_checks(cases, jobs=2, profile=fake)}
    big = results["digits-dscnn/qemu-m0"]
    assert big.status == "failed" and big.exit_code == EXIT_TOO_LARGE
    assert "does not fit the board: FLASH needs 3 MB" in big.messages()[0]
    unchecked = results["digits-mobilenetv3/qemu-m0"]
    if "check" in unchecked.figures:  # reports that carry the reference check's status
        assert unchecked.status == "unchecked" and unchecked.exit_code == EXIT_UNCHECKED
        assert "no reference could run it" in unchecked.messages()[0]
    assert exit_code(results.values()) == EXIT_TOO_LARGE
