"""A markdown summary of a `hil check` run for a pull-request comment or a CI job summary.

One headline with the verdict, one table (a row per case; with a baseline each figure shows
old -> new and the change), then one bullet per problem so a reviewer sees in seconds what
failed, by how much, and which cases were flaky.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hil.check.baseline import MetricChange, Tolerance
from hil.check.result import KIB, CaseResult

_ICON = {
    "passed": "✅ passed",
    "flaky": "⚠️ flaky",
    "regressed": "📈 regressed",
    "unchecked": "❔ unchecked",
    "failed": "❌ failed",
    "error": "💥 error",
}
#: Table columns: (header, metric for baseline changes, figure key, scale, format).
_COLUMNS = (
    ("latency (ms)", "latency", "latency_ms", 1.0, ".3f"),
    ("RAM (KiB)", "ram", "ram_bytes", 1 / KIB, ",.2f"),
    ("flash (KiB)", "flash", "flash_bytes", 1 / KIB, ",.2f"),
    ("max diff (LSB)", "lsb", "max_abs_diff", 1.0, "g"),
)


def headline(results: Sequence[CaseResult]) -> str:
    """E.g. '❌ 1 failed, 3 passed (1 flaky) of 4'."""
    counts: dict[str, int] = {}
    for r in results:
        key = "passed" if r.status == "flaky" else r.status
        counts[key] = counts.get(key, 0) + 1
    flaky = sum(r.flaky for r in results)
    order = ("error", "failed", "unchecked", "regressed", "passed")
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    text = ", ".join(parts) or "no cases"
    if flaky:
        text += f" ({flaky} flaky)"
    icon = "✅" if all(r.ok for r in results) else "❌"
    return f"{icon} {text} of {len(results)}"


def render(
    results: Sequence[CaseResult],
    *,
    title: str = "hil check",
    baseline: str | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
) -> str:
    """The whole summary as markdown text."""
    has_baseline = baseline is not None
    lines = [f"### {title}: {headline(results)}", ""]
    header = ["check", "board", "result"] + [c[0] for c in _COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["--:"] * len(_COLUMNS)) + "|")
    for r in results:
        board = f"{r.case.board} ({r.case.backend})" if r.case.backend else r.case.board
        cells = [_escape(r.case.name), board, _ICON.get(r.status, r.status)]
        changes = {c.metric: c for c in r.changes}
        for _, metric, key, scale, spec in _COLUMNS:
            old = r.baseline_figures.get(key)
            cells.append(
                _cell(r.figures.get(key), scale, spec, old, changes.get(metric), has_baseline)
            )
        lines.append("| " + " | ".join(cells) + " |")
    problems = [(r, m) for r in results for m in r.messages()]
    if problems:
        lines += ["", "**Problems**", ""]
        lines += [f"- `{r.case.id}`: {_escape(_squash(m))}" for r, m in problems]
    notes = [r for r in results if r.baseline_note]
    if has_baseline:
        lines += ["", f"Compared with the baseline `{baseline}`"]
        if tolerances:
            lines[-1] += (
                " (tolerances: " + ", ".join(f"{m} {t.text}" for m, t in tolerances.items()) + ")"
            )
        lines[-1] += "; a change shows old → new (change)."
        lines += [f"- `{r.case.id}`: {r.baseline_note}" for r in notes]
    sources = sorted(
        {str(r.figures["timing_source"]) for r in results if r.figures.get("timing_source")}
    )
    if "qemu-icount" in sources:
        lines += [
            "",
            "Latency under QEMU counts executed instructions (exact and repeatable) and converts "
            "them to ms at the clock of the board the stand-in represents, as if one instruction "
            "took one cycle.",
        ]
    return "\n".join(lines) + "\n"


def write(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cell(
    value: object,
    scale: float,
    spec: str,
    old_value: object,
    change: MetricChange | None,
    has_baseline: bool,
) -> str:
    if not _is_number(value):
        return "–"
    new = format(value * scale, spec)  # type: ignore[operator]
    if not has_baseline:
        return new
    if not _is_number(old_value) or change is None:
        return f"{new} (new)"
    old = format(old_value * scale, spec)  # type: ignore[operator]
    # The change is the judged one (latency: counts when both runs used the same timing source).
    delta = f"{change.percent:+.1f}%" if change.percent is not None else f"{change.delta:+g}"
    mark = " ❌" if change.regressed else ""
    return f"{old} → {new} ({delta}{mark})"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _squash(text: str) -> str:
    return " ".join(text.split())
