"""What one case gave: figures, budget verdicts, baseline changes, retries; and the exit code.

Statuses, worst first: error (the case could not be measured), failed (a budget or the
correctness check failed, or the model does not fit), unchecked (measured, but the outputs
could not be compared with a reference), regressed (over a baseline tolerance), passed. A pass
that needed a retry is `flaky`: it counts as passed for the exit code and is reported as flaky
everywhere (table, JUnit XML, JSON, markdown).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hil.check.baseline import MetricChange
from hil.check.config import BUDGET_KEYS, CheckCase

KIB = 1024

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_MISMATCH = 4
EXIT_TOO_LARGE = 5
EXIT_UNCHECKED = 6
EXIT_REGRESSION = 7

#: Which exit code wins when cases fail in different ways (most serious first). As for
#: `hil profile`: a wrong model is worse than a slow one, an unchecked one is not known right.
_EXIT_ORDER = (
    EXIT_ERROR,
    EXIT_MISMATCH,
    EXIT_TOO_LARGE,
    EXIT_UNCHECKED,
    EXIT_BUDGET,
    EXIT_REGRESSION,
)
#: `Report.check` values (hil.report's CHECK_FAILED / CHECK_NOT_DONE; read by value so
#: reports of older benches without the field still work).
_CHECK_FAILED = "failed"
_CHECK_NOT_DONE = "not done"

#: Every status, worst first.
STATUSES = ("error", "failed", "unchecked", "regressed", "flaky", "passed")

#: Report fields left out of a case's figures (bulky, or verdicts recomputed here).
_NOT_FIGURES = frozenset({"layers", "budgets", "latency_counts_per_run"})


@dataclass(frozen=True)
class Problem:
    """A budget or correctness verdict that failed, with the numbers behind its message."""

    kind: str  # "budget", "mismatch", "too_large", "unchecked"
    key: str  # the budget key (max_ram_kb, ...) or the kind again
    message: str
    measured: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class Attempt:
    """A run that ended in an error which the runner retried (or gave up after)."""

    error_type: str
    message: str
    seconds: float


@dataclass
class CaseResult:
    """Everything `hil check` knows about one case after running it."""

    case: CheckCase
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    error_type: str | None = None
    error: str | None = None
    retried: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    changes: list[MetricChange] = field(default_factory=list)
    baseline_figures: dict[str, Any] = field(default_factory=dict)
    baseline_note: str | None = None

    @property
    def measured(self) -> bool:
        return bool(self.figures)

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.regressed]

    @property
    def flaky(self) -> bool:
        """The target failed first and answered on the retry (a case that failed every
        attempt is an error, not flaky)."""
        return bool(self.retried) and self.measured

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        if any(p.kind != "unchecked" for p in self.problems):
            return "failed"
        if self.problems:
            return "unchecked"
        if self.regressions:
            return "regressed"
        return "flaky" if self.flaky else "passed"

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "flaky")

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_ERROR
        kinds = {p.kind for p in self.problems}
        for kind, code in (
            ("mismatch", EXIT_MISMATCH),
            ("too_large", EXIT_TOO_LARGE),
            ("unchecked", EXIT_UNCHECKED),
            ("budget", EXIT_BUDGET),
        ):
            if kind in kinds:
                return code
        return EXIT_REGRESSION if self.regressions else EXIT_OK

    def messages(self) -> list[str]:
        """Why this case is not a clean pass, one line each (empty for a clean pass)."""
        lines = []
        if self.error is not None:
            lines.append(f"{self.error_type}: {self.error}")
        lines += [p.message for p in self.problems]
        lines += [f"regression: {c.describe()}" for c in self.regressions]
        lines += [
            f"attempt {i} failed and was retried: {a.error_type}: {first_line(a.message)}"
            for i, a in enumerate(self.retried, start=1)
        ]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """The case as `hil check --json` (and a baseline) stores it."""
        c = self.case
        return {
            "id": c.id,
            "name": c.name,
            "model": c.model_label,
            "board": c.board,
            "backend": c.backend,
            "status": self.status,
            "flaky": self.flaky,
            "attempts": len(self.retried) + 1,
            "seconds": round(self.seconds, 3),
            "budgets": dict(c.budgets),
            "problems": [
                {"kind": p.kind, "key": p.key, "message": p.message} for p in self.problems
            ],
            "error": None
            if self.error is None
            else {"type": self.error_type, "message": self.error},
            "retried": [
                {"type": a.error_type, "message": a.message, "seconds": round(a.seconds, 3)}
                for a in self.retried
            ],
            "baseline": {
                "note": self.baseline_note,
                "changes": {ch.metric: ch.to_dict() for ch in self.changes},
            },
            "figures": self.figures,
        }


def exit_code(results: Iterable[CaseResult]) -> int:
    """The exit code of a whole run: the most serious one of its cases."""
    codes = {r.exit_code for r in results}
    return next((code for code in _EXIT_ORDER if code in codes), EXIT_OK)


def figures_of(report: Any) -> dict[str, Any]:
    """A Report's fields as plain JSON values, without per-layer and per-run detail.

    Read by name from `to_dict()`, so fields the Report gains later are kept without changes
    here; non-finite numbers become None (JSON has no spelling for them).
    """
    data = report.to_dict() if hasattr(report, "to_dict") else dict(vars(report))
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _NOT_FIGURES:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if isinstance(value, str | int | float | bool | dict | list) or value is None:
            out[key] = value
    return out


def evaluate(case: CheckCase, figures: Mapping[str, Any]) -> list[Problem]:
    """The case's budgets and the correctness check against measured figures."""
    problems = []
    checks = (
        ("max_latency_ms", "latency", figures.get("latency_ms"), 1.0, "ms", 3),
        ("max_latency_counts", "latency", figures.get("latency_counts"), 1.0, "counts", 0),
        ("max_ram_kb", "RAM", figures.get("ram_bytes"), 1 / KIB, "KiB", 2),
        ("max_flash_kb", "flash", figures.get("flash_bytes"), 1 / KIB, "KiB", 2),
    )
    for key, what, value, scale, unit, digits in checks:
        limit = case.budgets.get(key)
        if limit is None or value is None:
            continue
        measured = float(value) * scale
        if measured > limit:
            over = measured - limit
            problems.append(
                Problem(
                    "budget",
                    key,
                    f"{what} {measured:,.{digits}f} {unit} is over {key} = {limit:g} {unit} "
                    f"by {over:,.{digits}f} {unit} (+{100 * over / limit:.1f}%)",
                    measured,
                    limit,
                )
            )
    if figures.get("check") == _CHECK_NOT_DONE:
        note = figures.get("check_note") or "no reference interpreter could run the model"
        problems.append(
            Problem(
                "unchecked",
                "unchecked",
                f"outputs NOT checked against a reference, so correctness is unknown: {note}",
            )
        )
        return problems
    diff = figures.get("max_abs_diff")
    limit = case.max_lsb_diff
    if "max_abs_diff" in figures and (
        diff is None or float(diff) > limit or figures.get("check") == _CHECK_FAILED
    ):
        shown = "a non-finite amount" if diff is None else f"{float(diff):g} LSB"
        reference = f" ({figures['reference']})" if figures.get("reference") else ""
        problems.append(
            Problem(
                "mismatch",
                "max_lsb_diff",
                f"outputs differ from the reference{reference} by up to {shown}, over "
                f"max_lsb_diff = {limit:g} LSB: the generated model computes something else",
                None if diff is None else float(diff),
                limit,
            )
        )
    return problems


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def budget_text(budgets: Mapping[str, float]) -> str:
    """E.g. 'latency <= 60 ms, RAM <= 16 KiB'."""
    names = {
        "max_latency_ms": "latency",
        "max_latency_counts": "latency",
        "max_ram_kb": "RAM",
        "max_flash_kb": "flash",
        "max_lsb_diff": "diff",
    }
    return ", ".join(
        f"{names[k]} <= {budgets[k]:g} {BUDGET_KEYS[k]}" for k in BUDGET_KEYS if k in budgets
    )


#: Report fields whose change explains a change of the figures: (field, how notes name it).
_PROVENANCE = (
    ("model_sha256", "the model file"),
    ("compiler_version", "the compiler"),
    ("build_flags", "the compiler flags"),
    ("target_version", "the target (emulator version)"),
)


def apply_baseline(
    results: Iterable[CaseResult], baseline: Mapping[str, Mapping[str, Any]]
) -> None:
    """Compare each measured case with the baseline's figures for the same case id."""
    from hil.check.baseline import compare

    for r in results:
        if not r.measured:
            continue
        old = baseline.get(r.case.id)
        if old is None:
            r.baseline_note = "new: not in the baseline"
            continue
        r.baseline_figures = dict(old)
        r.changes = compare(old, r.figures, r.case.tolerances)
        notes = []
        if old.get("timing_source") != r.figures.get("timing_source"):
            notes.append(
                f"timing source changed ({old.get('timing_source')} -> "
                f"{r.figures.get('timing_source')}): latency compared in ms"
            )
        for key, what in _PROVENANCE:
            before, after = old.get(key), r.figures.get(key)
            if before and after and before != after:
                notes.append(f"{what} changed since the baseline")
        r.baseline_note = "; ".join(notes) or None


def results_document(
    results: Sequence[CaseResult],
    *,
    checks_file: str,
    started: datetime,
    seconds: float,
    baseline: str | None,
) -> dict[str, Any]:
    """What `hil check --json` writes; also the baseline format (`load_baseline` reads it)."""
    from hil import __version__
    from hil.check.baseline import SCHEMA

    return {
        "schema": SCHEMA,
        "hil_version": __version__,
        "checks_file": checks_file,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "baseline": baseline,
        "exit_code": exit_code(results),
        "summary": {s: sum(r.status == s for r in results) for s in STATUSES},
        "results": [r.to_dict() for r in results],
    }
