"""A structural validator for JUnit XML as Jenkins and GitLab read it, written for these tests.

It encodes the rules of Jenkins' junit-10.xsd (the strictest of the common JUnit schemas; the
xUnit plugin rejects files that break it; GitLab's parser reads a subset of it):
- `testsuites` (attributes name, time, tests, failures, errors) holds only `testsuite`s;
- `testsuite` needs name, tests, failures, errors, may carry group, time, skipped, timestamp,
  hostname, id, package, file, log, url, and holds `testsuite`, `properties`, `testcase`,
  `system-out`, `system-err`;
- `properties` holds only `property` (name and value, both required);
- `testcase` needs name, may carry time, classname, group, and holds only `skipped`, `error`,
  `failure`, `rerunFailure`, `rerunError`, `flakyFailure`, `flakyError`, `system-out`,
  `system-err` (no `properties`: that is pytest's xunit1 extension);
- `failure`, `error`, `skipped` carry type and message and text only;
- the rerun/flaky elements need type, may carry message, and hold at most one `stackTrace`,
  `system-out`, `system-err`, in that order;
- times match Surefire's time pattern.
On top it checks what every reader assumes: counts are non-negative integers that agree with
the test cases below them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_TIME = re.compile(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")
_SUITES_ATTRS = {"name", "time", "tests", "failures", "errors"}
_SUITE_REQUIRED = {"name", "tests", "failures", "errors"}
_SUITE_ATTRS = _SUITE_REQUIRED | {
    "group",
    "time",
    "skipped",
    "timestamp",
    "hostname",
    "id",
    "package",
    "file",
    "log",
    "url",
}
_SUITE_CHILDREN = {"testsuite", "properties", "testcase", "system-out", "system-err"}
_CASE_ATTRS = {"name", "time", "classname", "group"}
_RERUN = ("rerunFailure", "rerunError", "flakyFailure", "flakyError")
_CASE_CHILDREN = {"skipped", "error", "failure", *_RERUN, "system-out", "system-err"}
_RERUN_CHILDREN = ("stackTrace", "system-out", "system-err")


def validate(root: ET.Element) -> list[str]:
    """Every violation found (empty when the document is valid)."""
    problems: list[str] = []
    if root.tag == "testsuites":
        _attrs(root, "testsuites", set(), _SUITES_ATTRS, problems)
        _time(root, "testsuites", problems)
        for child in root:
            if child.tag != "testsuite":
                problems.append(f"testsuites: unexpected child <{child.tag}>")
            else:
                _suite(child, problems)
        _totals(root, root.findall(".//testcase"), problems)
    elif root.tag == "testsuite":
        _suite(root, problems)
    else:
        problems.append(f"root element is <{root.tag}>, not <testsuites> or <testsuite>")
    return problems


def _suite(suite: ET.Element, problems: list[str]) -> None:
    where = f"testsuite {suite.get('name')!r}"
    _attrs(suite, where, _SUITE_REQUIRED, _SUITE_ATTRS, problems)
    _time(suite, where, problems)
    _text_free(suite, where, problems)
    for child in suite:
        if child.tag not in _SUITE_CHILDREN:
            problems.append(f"{where}: unexpected child <{child.tag}>")
        elif child.tag == "testsuite":
            _suite(child, problems)
        elif child.tag == "properties":
            _properties(child, where, problems)
        elif child.tag == "testcase":
            _case(child, problems)
        else:
            _leaf(child, f"{where} <{child.tag}>", set(), problems)
    _totals(suite, suite.findall("testcase"), problems)


def _properties(props: ET.Element, where: str, problems: list[str]) -> None:
    _attrs(props, f"{where} <properties>", set(), set(), problems)
    for prop in props:
        if prop.tag != "property":
            problems.append(f"{where} <properties>: unexpected child <{prop.tag}>")
            continue
        _attrs(prop, f"{where} <property>", {"name", "value"}, {"name", "value"}, problems)
        if len(prop):
            problems.append(f"{where} <property {prop.get('name')!r}>: has child elements")


def _case(case: ET.Element, problems: list[str]) -> None:
    where = f"testcase {case.get('classname')}.{case.get('name')}"
    _attrs(case, where, {"name"}, _CASE_ATTRS, problems)
    _time(case, where, problems)
    _text_free(case, where, problems)
    for child in case:
        tag = child.tag
        if tag not in _CASE_CHILDREN:
            problems.append(f"{where}: unexpected child <{tag}>")
        elif tag in _RERUN:
            _attrs(child, f"{where} <{tag}>", {"type"}, {"type", "message"}, problems)
            seen = [c.tag for c in child]
            order = [t for t in _RERUN_CHILDREN if t in seen]
            if seen != order:
                problems.append(f"{where} <{tag}>: children {seen} not in the order {order}")
            for c in child:
                _leaf(c, f"{where} <{tag}><{c.tag}>", set(), problems)
        elif tag in ("failure", "error", "skipped"):
            _leaf(child, f"{where} <{tag}>", {"type", "message"}, problems)
        else:
            _leaf(child, f"{where} <{tag}>", set(), problems)


def _leaf(el: ET.Element, where: str, allowed: set[str], problems: list[str]) -> None:
    _attrs(el, where, set(), allowed, problems)
    if len(el):
        problems.append(f"{where}: has child elements {[c.tag for c in el]}, only text allowed")


def _attrs(
    el: ET.Element, where: str, required: set[str], allowed: set[str], problems: list[str]
) -> None:
    missing = sorted(required - set(el.keys()))
    extra = sorted(set(el.keys()) - allowed)
    if missing:
        problems.append(f"{where}: missing attribute(s) {missing}")
    if extra:
        problems.append(f"{where}: attribute(s) {extra} not in the schema")


def _time(el: ET.Element, where: str, problems: list[str]) -> None:
    value = el.get("time")
    if value is not None and not _TIME.match(value):
        problems.append(f"{where}: time {value!r} does not match the schema's time pattern")


def _text_free(el: ET.Element, where: str, problems: list[str]) -> None:
    texts = [el.text, *(c.tail for c in el)]
    if any(t and t.strip() for t in texts):
        problems.append(f"{where}: holds text outside its child elements")


def _totals(el: ET.Element, cases: list[ET.Element], problems: list[str]) -> None:
    where = f"<{el.tag} {el.get('name')!r}>"
    expected = {
        "tests": len(cases),
        "failures": sum(c.find("failure") is not None for c in cases),
        "errors": sum(c.find("error") is not None for c in cases),
        "skipped": sum(c.find("skipped") is not None for c in cases),
    }
    for key, count in expected.items():
        value = el.get(key)
        if value is None:
            continue
        if not value.isdigit():
            problems.append(f"{where}: {key}={value!r} is not a non-negative integer")
        elif int(value) != count:
            problems.append(f"{where}: {key}={value} but {count} such test case(s) below it")
