"""Backends side by side: the own kernels, CMSIS-NN and TFLM on the same boards and inputs.

Models: the reference layer of docs/backends.md (input 32x32x16, 3x3 conv, 32 output channels,
stride 1, same padding: 4.72 M MACs), every .tflite in examples/models/ and the MLPerf Tiny
models of ../shared/models/ (when present). Boards: both QEMU stand-ins. Every available
backend runs (`hil profile --backend all`: CMSIS_NN_ROOT / TFLM_ROOT select the others); a
backend that is not available is listed with the reason.

Per model and board: instructions (QEMU icount), instructions per MAC, flash, RAM (static +
peak stack), arena, and the max difference from the reference in LSB.

    .venv/bin/python benchmarks/backends.py [--boards qemu-m4 qemu-m0] [--runs 3]
        [--models a.tflite ...] [--backends own cmsis-nn tflm] [--json out.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from hil.backends import BACKEND_NAMES, available_backends
from hil.backends.compare import Comparison, compare_backends
from hil.build import cache_dir
from hil.report import CHECK_NOT_DONE, Report

REPO = Path(__file__).resolve().parent.parent
MODEL_DIRS = [REPO / "examples" / "models", REPO.parent / "shared" / "models"]
BOARDS = ("qemu-m4", "qemu-m0")


def reference_layer() -> Path:
    """The reference conv layer as a full-int8 .tflite (built and cached by the instructions
    per MAC benchmark, which defines it)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from instructions_per_mac import reference_layer as build

    return build(cache_dir() / "benchmarks" / "reference_conv.tflite")


def default_models() -> list[Path]:
    models = [reference_layer()]
    for d in MODEL_DIRS:
        models += sorted(d.glob("*.tflite")) if d.is_dir() else []
    return models


def _cell(r: Report | None, what: str) -> str:
    if r is None:
        return "-"
    if what == "counts":
        return f"{r.latency_counts:,}"
    if what == "per_mac":
        return f"{r.counts_per_mac:.2f}" if r.counts_per_mac else "-"
    if what == "flash":
        return f"{r.flash_bytes:,}"
    if what == "ram":
        return f"{r.ram_bytes:,}"
    if what == "arena":
        used = r.arena_used_bytes
        return f"{used:,}/{r.arena_bytes:,}" if used not in (None, r.arena_bytes) else (
            f"{r.arena_bytes:,}"
        )
    if r.check == CHECK_NOT_DONE:
        return "n/c"
    return "nan" if not math.isfinite(r.max_abs_diff) else f"{r.max_abs_diff:g}"


COLUMNS = (
    ("instr", "counts"),
    ("instr/MAC", "per_mac"),
    ("flash B", "flash"),
    ("RAM B", "ram"),
    ("arena B", "arena"),
    ("diff", "diff"),
)


def table(results: list[Comparison], backends: list[str]) -> Table:
    t = Table(title="backends side by side (QEMU icount: instructions; RAM = static + stack)")
    t.add_column("model")
    t.add_column("board")
    t.add_column("MACs", justify="right")
    for title, _ in COLUMNS:
        for b in backends:
            t.add_column(f"{title} {b}", justify="right")
    for c in results:
        any_report = next(iter(c.reports.values()), None)
        macs = f"{any_report.macs:,}" if any_report else "-"
        row = [Path(c.model).stem, c.board, macs]
        for _, what in COLUMNS:
            row += [_cell(c.reports.get(b), what) for b in backends]
        t.add_row(*row)
    return t


def markdown(results: list[Comparison], backends: list[str]) -> str:
    """The same figures as a Markdown table per board (for docs/backends.md)."""
    out = []
    for board in dict.fromkeys(c.board for c in results):
        head = ["model", "MACs"] + [f"{title} {b}" for title, _ in COLUMNS for b in backends]
        out.append(f"**{board}**\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for c in (c for c in results if c.board == board):
            r0 = next(iter(c.reports.values()), None)
            row = [Path(c.model).stem, f"{r0.macs:,}" if r0 else "-"]
            row += [_cell(c.reports.get(b), what) for _, what in COLUMNS for b in backends]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", default=list(BOARDS))
    parser.add_argument("--models", nargs="+", type=Path, help="models (default: see above)")
    parser.add_argument("--backends", nargs="+", choices=BACKEND_NAMES, help="default: all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every report as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    args = parser.parse_args(argv)

    console = Console(width=240, stderr=True)
    usable, skipped = available_backends()
    wanted = args.backends or list(BACKEND_NAMES)
    for name, why in skipped.items():
        if name in wanted:
            console.print(f"[yellow]{name}: not run: {why}[/]")
    backends = [b.name for b in usable if b.name in wanted]
    results: list[Comparison] = []
    for board in args.boards:
        for model in args.models or default_models():
            console.print(f"[dim]{model.name} on {board} ...[/]")
            c = compare_backends(model, board, backends, runs=args.runs, progress=False)
            for name, why in c.failed.items():
                console.print(f"[red]{model.name} on {board} with {name}: {why}[/]")
            results.append(c)
    Console(width=240).print(table(results, backends))
    if args.markdown:
        print(markdown(results, backends))
    if args.json:
        args.json.write_text(json.dumps([c.to_dict() for c in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
