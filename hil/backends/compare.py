"""`hil profile MODEL --backend all`: every available backend on the same board and inputs,
side by side in one table (and one JSON document).

Each backend is one ordinary `hil.profile` run (same seed or the same user inputs, so the same
input bytes); a backend that cannot be used here is listed with the reason, one that fails
with the error, and the others still run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from hil.errors import HilError
from hil.report import CHECK_NOT_DONE, Report

#: Version of the comparison JSON layout.
COMPARISON_SCHEMA_VERSION = 1


@dataclass
class Comparison:
    """Reports of the backends that ran, and why the others did not (`skipped`: unavailable
    here, `failed`: the run stopped with an error)."""

    model: str
    board: str
    reports: dict[str, Report] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": COMPARISON_SCHEMA_VERSION,
            "model": self.model,
            "board": self.board,
            "backends": {name: r.to_dict() for name, r in self.reports.items()},
            "skipped": dict(self.skipped),
            "failed": dict(self.failed),
        }

    def render(self) -> Group:
        """One summary table (a column per backend), then the layers side by side."""
        parts: list[Any] = [summary_table(self.model, self.board, self.reports)]
        if self.reports:
            parts.append(layer_table(self.reports))
        for name, why in self.skipped.items():
            parts.append(Text(f"{name}: not run: {why}", style="yellow"))
        for name, why in self.failed.items():
            parts.append(Text(f"{name}: FAILED: {why}", style="red"))
        return Group(*parts)


def compare_backends(
    model: Any,
    board: str,
    backends: Sequence[str] | None = None,
    *,
    profile: Callable[..., Report] | None = None,
    **kwargs: Any,
) -> Comparison:
    """Profile `model` on `board` with each of `backends` (default: every one usable here).

    `kwargs` go to `hil.profile` unchanged (runs, inputs, seed, reference, budgets, ...).
    """
    from hil.backends import BACKEND_NAMES, available_backends
    from hil.profile import profile as default_profile

    run = profile or default_profile
    usable, skipped = available_backends()
    names = list(backends) if backends is not None else list(BACKEND_NAMES)
    usable_names = {b.name for b in usable}
    result = Comparison(model=str(getattr(model, "name", model)), board=board)
    for name in names:
        if name not in usable_names:
            result.skipped[name] = skipped.get(name, "unknown backend")
            continue
        try:
            report = run(model, board, backend=name, **kwargs)
        except HilError as exc:
            result.failed[name] = str(exc)
            continue
        result.reports[name] = report
        result.model = report.model
    return result


def _unit(reports: dict[str, Report]) -> str:
    source = next(iter(reports.values())).timing_source if reports else ""
    return {"qemu-icount": "instructions", "dwt-cyccnt": "cycles"}.get(source, "ticks")


def _diff_text(r: Report) -> str:
    if r.check == CHECK_NOT_DONE:
        return "not checked"
    diff = "nan" if not math.isfinite(r.max_abs_diff) else f"{r.max_abs_diff:g}"
    return f"{diff} LSB ({'ok' if r.outputs_match else 'MISMATCH'})"


def summary_table(model: str, board: str, reports: dict[str, Report]) -> Table:
    """Rows: the figures; one column per backend."""
    unit = _unit(reports)
    table = Table(title=f"{model} on {board}: backends side by side")
    table.add_column("")
    for name in reports:
        table.add_column(name, justify="right")

    def row(label: str, fn: Callable[[Report], str]) -> None:
        table.add_row(label, *(fn(r) for r in reports.values()))

    row(unit, lambda r: f"{r.latency_counts:,}")
    row(f"{unit}/MAC", lambda r: f"{r.counts_per_mac:.2f}" if r.counts_per_mac else "-")
    row("latency ms", lambda r: f"{r.latency_ms:.3f}")
    row("flash B", lambda r: f"{r.flash_bytes:,}")
    row("RAM B (static + stack)", lambda r: f"{r.ram_bytes:,}")
    row("  static B", lambda r: f"{r.static_ram_bytes:,}")
    row("  stack B", lambda r: f"{r.stack_bytes:,}")
    row("arena B", lambda r: _arena_text(r))
    row("max diff vs reference", _diff_text)
    row("kernels", lambda r: _fallback_text(r))
    row("version", lambda r: r.backend_version or "-")
    row("rounding", lambda r: r.numerics.get("rounding", "-").split(" (")[0])
    return table


def _arena_text(r: Report) -> str:
    text = f"{r.arena_bytes:,}"
    if r.arena_used_bytes is not None and r.arena_used_bytes != r.arena_bytes:
        text = f"{r.arena_used_bytes:,} used of {text}"
    if r.scratch_bytes:
        text += f" (scratch {r.scratch_bytes:,})"
    return text


def _fallback_text(r: Report) -> str:
    fell_back = sum(1 for layer in r.layers if layer.note)
    return f"{fell_back} of {len(r.layers)} layers fell back" if fell_back else "no fallback"


def layer_table(reports: dict[str, Report]) -> Table:
    """Per layer: op, MACs, then each backend's counts and kernel."""
    unit = _unit(reports)
    first = next(iter(reports.values()))
    table = Table(title=f"per layer ({unit}, last measured run)")
    for name in ("#", "op", "MACs"):
        table.add_column(name, justify="left" if name == "op" else "right")
    for name in reports:
        table.add_column(name, justify="right")
        table.add_column(f"{name} kernel")
    rows = max(len(r.layers) for r in reports.values())
    for i in range(rows):
        base = first.layers[i] if i < len(first.layers) else None
        cells = [str(i), base.op if base else "", f"{base.macs:,}" if base else ""]
        for r in reports.values():
            layer = r.layers[i] if i < len(r.layers) else None
            if layer is None:
                cells += ["-", ""]
                continue
            per_mac = f" ({layer.counts / layer.macs:.2f}/MAC)" if layer.macs else ""
            cells += [f"{layer.counts:,}{per_mac}", layer.kernel + ("*" if layer.note else "")]
        table.add_row(*cells)
    table.caption = "* fell back to the own kernel (the report's layer notes say why)"
    return table
