"""The one table `hil check` prints: a row per case, then what went wrong, one line each."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from hil.check.markdown import headline
from hil.check.result import KIB, CaseResult

_STYLE = {
    "passed": "green",
    "flaky": "yellow",
    "regressed": "red",
    "unchecked": "red",
    "failed": "bold red",
    "error": "bold red",
}


def render(results: Sequence[CaseResult], *, title: str, baseline: bool) -> Group:
    """Table plus problem lines, as one rich renderable."""
    table = Table(title=f"{title}: {headline(results)}")
    columns = ["check", "board", "result", "latency ms", "counts", "RAM KiB", "flash KiB", "LSB"]
    if baseline:
        columns += ["Δ latency", "Δ RAM", "Δ flash"]
    columns.append("time s")
    for name in columns:
        table.add_column(name, justify="left" if name in ("check", "board", "result") else "right")
    for r in results:
        f = r.figures
        board = f"{r.case.board} [{r.case.backend}]" if r.case.backend else r.case.board
        status = Text(r.status, style=_STYLE.get(r.status, ""))
        row: list[str | Text] = [
            r.case.name,
            board,
            status,
            _fmt(f.get("latency_ms"), ".3f"),
            _fmt(f.get("latency_counts"), ",.0f"),
            _fmt(f.get("ram_bytes"), ",.2f", 1 / KIB),
            _fmt(f.get("flash_bytes"), ",.2f", 1 / KIB),
            _fmt(f.get("max_abs_diff"), "g"),
        ]
        if baseline:
            changes = {c.metric: c for c in r.changes}
            for metric in ("latency", "ram", "flash"):
                ch = changes.get(metric)
                if ch is None:
                    row.append("new" if r.measured and not r.baseline_figures else "–")
                    continue
                text = f"{ch.percent:+.1f}%" if ch.percent is not None else f"{ch.delta:+g}"
                row.append(Text(text, style="red" if ch.regressed else ""))
        row.append(f"{r.seconds:.1f}")
        table.add_row(*row)
    lines = [
        Text(f"{r.case.id}: {message}", style=_STYLE.get(r.status, ""))
        for r in results
        for message in r.messages()
    ]
    return Group(table, *lines)


def _fmt(value: object, spec: str, scale: float = 1.0) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    return format(value * scale, spec)
