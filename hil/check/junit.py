"""JUnit XML of a `hil check` run, in the schema Jenkins (junit-10.xsd) and GitLab read.

Layout: `<testsuites>` holds one `<testsuite>` per case, and that suite one `<testcase>`
(classname `hil.check.<check name>`, name `<board>` or `<board>[<backend>]`, stable across
runs). The measured figures are the suite's `<properties>`: junit-10.xsd allows properties
only on suites, so one suite per case keeps every figure next to its case and the file valid.
The same figures are in the case's `<system-out>` for readers that show only that.

Outcomes:
- budget, correctness, fit or baseline failure: `<failure type=KIND message=...>` (message:
  which budget and by how much), full text in the element;
- the case could not be measured: `<error type=ErrorClass message=...>`;
- a retry after a target timeout: `<flakyError>` when the retry passed (Surefire's and
  Jenkins' flaky-test element: the case passed, but not the first time) or `<rerunError>` when
  it did not; plus properties `flaky=true` and `attempts`.
"""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hil.check.result import KIB, CaseResult, first_line

CLASSNAME_PREFIX = "hil.check"


def classname(result: CaseResult) -> str:
    """`hil.check.<name>`; dots in the name become '_' (CI servers split classnames on dots)."""
    return f"{CLASSNAME_PREFIX}.{result.case.name.replace('.', '_')}"


def testcase_name(result: CaseResult) -> str:
    c = result.case
    return f"{c.board}[{c.backend}]" if c.backend else c.board


def to_xml(
    results: Sequence[CaseResult], *, started: datetime, seconds: float, name: str = "hil check"
) -> ET.Element:
    """The whole document's root element."""
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for r in results:
        suite = _suite(r, started)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{seconds:.3f}")
    return root


def write(
    path: str | Path,
    results: Sequence[CaseResult],
    *,
    started: datetime,
    seconds: float,
) -> None:
    root = to_xml(results, started=started, seconds=seconds)
    ET.indent(root)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _suite(r: CaseResult, started: datetime) -> ET.Element:
    failed = r.error is None and not r.ok
    suite = ET.Element(
        "testsuite",
        name=f"{classname(r)}.{testcase_name(r)}",
        tests="1",
        failures="1" if failed else "0",
        errors="1" if r.error is not None else "0",
        skipped="0",
        time=f"{r.seconds:.3f}",
        timestamp=started.isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for key, value in _properties(r):
        ET.SubElement(props, "property", name=key, value=value)

    case = ET.SubElement(
        suite, "testcase", classname=classname(r), name=testcase_name(r), time=f"{r.seconds:.3f}"
    )
    if r.error is not None:
        el = ET.SubElement(
            case, "error", type=r.error_type or "error", message=_one_line(first_line(r.error))
        )
        el.text = r.error
    elif failed:
        lines = [p.message for p in r.problems] + [
            f"regression: {c.describe()}" for c in r.regressions
        ]
        kind = r.problems[0].kind if r.problems else "regression"
        el = ET.SubElement(case, "failure", type=kind, message=_one_line("; ".join(lines)))
        el.text = "\n".join(lines)
    retry_tag = "flakyError" if r.ok else "rerunError"
    for attempt in r.retried:
        el = ET.SubElement(
            case, retry_tag, type=attempt.error_type, message=_one_line(first_line(attempt.message))
        )
        ET.SubElement(el, "stackTrace").text = attempt.message
    out = ET.SubElement(case, "system-out")
    out.text = summary_text(r)
    return suite


def _properties(r: CaseResult) -> list[tuple[str, str]]:
    c = r.case
    props: list[tuple[str, str]] = [
        ("case", c.id),
        ("model_file", c.model_label),
        ("board", c.board),
    ]
    if c.backend:
        props.append(("backend", c.backend))
    props += [
        ("status", r.status),
        ("flaky", "true" if r.flaky else "false"),
        ("attempts", str(len(r.retried) + 1)),
    ]
    props += [(f"budget.{k}", _value(v)) for k, v in c.budgets.items()]
    taken = {name for name, _ in props}
    for key, value in r.figures.items():
        if key in taken:  # the report's board is the case's
            continue
        if isinstance(value, dict):
            props += [(f"{key}.{k}", _value(v)) for k, v in value.items()]
        else:
            props.append((key, _value(value)))
    for ch in r.changes:
        props += [
            (f"baseline.{ch.metric}.{ch.field}", _value(ch.old)),
            (f"baseline.{ch.metric}.change_percent", _value(ch.percent)),
            (f"baseline.{ch.metric}.regressed", "true" if ch.regressed else "false"),
        ]
    if r.baseline_note:
        props.append(("baseline.note", r.baseline_note))
    return props


def summary_text(r: CaseResult) -> str:
    """The figures and verdicts in words (the case's system-out)."""
    f = r.figures
    lines = [f"{r.case.model_label} on {testcase_name(r)}: {r.status}"]
    if r.measured:
        lines.append(
            f"latency {_num(f.get('latency_ms'), '.3f')} ms "
            f"({_num(f.get('latency_counts'), ',.0f')} counts, {f.get('timing_source', '?')}); "
            f"RAM {_kib(f.get('ram_bytes'))} KiB; flash {_kib(f.get('flash_bytes'))} KiB; "
            f"outputs max diff {_num(f.get('max_abs_diff'), 'g')} LSB"
        )
    lines += r.messages()
    return "\n".join(lines) + "\n"


def _num(value: Any, spec: str) -> str:
    return "?" if not isinstance(value, int | float) else format(value, spec)


def _kib(value: Any) -> str:
    return "?" if not isinstance(value, int | float) else f"{value / KIB:,.2f}"


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())
