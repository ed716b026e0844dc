"""Backends side by side: the own kernels, CMSIS-NN and TFLM on the same boards and inputs.

Models: the reference layer of docs/backends.md (input 32x32x16, 3x3 conv, 32 output channels,
stride 1, same padding: 4.72 M MACs), every .tflite in examples/models/ and the MLPerf Tiny
models of ../shared/models/ (when present). Boards: both QEMU stand-ins. Backends: `own`,
`cmsis-nn` (CMSIS_NN_ROOT) and TFLM (TFLM_ROOT) twice, with its reference kernels (`tflm-ref`)
and with its cmsis_nn kernels (`tflm-cmsis`, needs CMSIS_NN_ROOT too); one that is not
available is listed with the reason.

Per model, board and backend: instructions (QEMU icount), instructions per MAC, flash, RAM
(static + peak stack), model RAM (the part a deployment needs, docs/measurement.md), arena
(TFLM: used/provisioned) and the max difference from the reference in LSB. Then the own
kernels against TFLM with CMSIS-NN kernels (issue 11's targets): instructions, RAM and flash
as ratios own / TFLM, with their geometric means.

    .venv/bin/python benchmarks/backends.py [--boards qemu-m4 qemu-m0] [--runs 3]
        [--models a.tflite ...] [--backends own cmsis-nn tflm-ref tflm-cmsis]
        [--json out.json] [--markdown]
    .venv/bin/python benchmarks/backends.py --from-json benchmarks/results/backends.json --markdown
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hil.report import CHECK_NOT_DONE

REPO = Path(__file__).resolve().parent.parent
MODEL_DIRS = [REPO / "examples" / "models", REPO.parent / "shared" / "models"]
BOARDS = ("qemu-m4", "qemu-m0")
#: Column name -> (backend, HIL_TFLM_KERNELS for tflm).
VARIANTS: dict[str, tuple[str, str | None]] = {
    "own": ("own", None),
    "cmsis-nn": ("cmsis-nn", None),
    "tflm-ref": ("tflm", "reference"),
    "tflm-cmsis": ("tflm", "cmsis_nn"),
}
#: Issue 11's targets, own / TFLM with CMSIS-NN kernels: at most this ratio.
TARGETS = {"instr": 0.9, "ram": 0.75, "flash": 0.7}
#: The reference layer's figures of DESIGN.md (instructions per MAC under QEMU icount, measured
#: before the bench had backends), shown next to the measured ones.
DESIGN_REFERENCE_LAYER = {
    "qemu-m4": {"CMSIS-NN -O2 (DSP)": 2.14, "CMSIS-NN without DSP": 3.06,
                "plain C loop, TFLite requantization": 7.65},
    "qemu-m0": {"CMSIS-NN -O2": 7.13, "plain C loop, TFLite requantization": 10.95},
}  # fmt: skip
REFERENCE_LAYER = "reference_conv"
#: JSON layout of --json (bumped when keys change meaning).
RESULTS_SCHEMA_VERSION = 1


def reference_layer() -> Path:
    """The reference conv layer as a full-int8 .tflite (built and cached by the instructions
    per MAC benchmark, which defines it)."""
    from hil.build import cache_dir

    sys.path.insert(0, str(REPO / "benchmarks"))
    from instructions_per_mac import reference_layer as build

    return build(cache_dir() / "benchmarks" / "reference_conv.tflite")


def default_models() -> list[Path]:
    models = [reference_layer()]
    for d in MODEL_DIRS:
        models += sorted(d.glob("*.tflite")) if d.is_dir() else []
    return models


@contextlib.contextmanager
def _tflm_kernels(choice: str | None) -> Iterator[None]:
    """HIL_TFLM_KERNELS set to `choice` (untouched for None) while the block runs."""
    if choice is None:
        yield
        return
    old = os.environ.get("HIL_TFLM_KERNELS")
    os.environ["HIL_TFLM_KERNELS"] = choice
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HIL_TFLM_KERNELS", None)
        else:
            os.environ["HIL_TFLM_KERNELS"] = old


def unavailable(variant: str) -> str | None:
    """Why `variant` cannot run here (None: it can)."""
    from hil.backends import get_backend

    backend, kernels = VARIANTS[variant]
    with _tflm_kernels(kernels):
        return get_backend(backend).unavailable()


def input_bytes(model: Path) -> int:
    """Bytes of the model's inputs (TFLM's image keeps a copy of them outside its arena)."""
    from hil.importer import load_tflite

    graph = load_tflite(model, check_support=False)
    return sum(graph.tensor(i).nbytes for i in graph.inputs)


def measure(model: Path, board: str, variants: Sequence[str], runs: int) -> dict[str, Any]:
    """One record: every variant's report (as JSON) on `board`, same inputs (seed 0)."""
    from hil.backends.compare import compare_backends

    record: dict[str, Any] = {
        "model": model.stem,
        "file": model.name,
        "board": board,
        "input_bytes": input_bytes(model),
        "backends": {},
        "failed": {},
    }
    for variant in variants:
        backend, kernels = VARIANTS[variant]
        with _tflm_kernels(kernels):
            c = compare_backends(model, board, [backend], runs=runs, progress=False, seed=0)
        if backend in c.reports:
            record["backends"][variant] = c.reports[backend].to_dict()
        else:
            record["failed"][variant] = c.failed.get(backend) or c.skipped.get(backend, "?")
    return record


# -- derived figures (from the JSON records, so the tables can be re-derived) ----------------


def _model_ram(record: dict[str, Any], variant: str) -> int | None:
    """The model's RAM in a deployment. For TFLM without the copies of the inputs the bench's
    image keeps outside TFLM's arena (a deployment writes its inputs into the arena)."""
    r = record["backends"].get(variant)
    if r is None or not r.get("model_ram_bytes"):
        return None
    ram = int(r["model_ram_bytes"])
    return ram - int(record["input_bytes"]) if r["backend"] == "tflm" else ram


def _cell(record: dict[str, Any], variant: str, what: str) -> str:
    r = record["backends"].get(variant)
    if r is None:
        return "failed" if variant in record["failed"] else "-"
    if what == "counts":
        return f"{r['latency_counts']:,}"
    if what == "per_mac":
        return f"{r['counts_per_mac']:.2f}" if r.get("counts_per_mac") else "-"
    if what == "flash":
        return f"{r['flash_bytes']:,}"
    if what == "ram":
        return f"{r['ram_bytes']:,}"
    if what == "model_ram":
        ram = _model_ram(record, variant)
        return f"{ram:,}" if ram is not None else "-"
    if what == "arena":
        used = r.get("arena_used_bytes")
        if used is not None and used != r["arena_bytes"]:
            return f"{used:,}/{r['arena_bytes']:,}"
        return f"{r['arena_bytes']:,}"
    if r.get("check") == CHECK_NOT_DONE:
        return "n/c"
    diff = r.get("max_abs_diff")
    return "nan" if diff is None else f"{diff:g}"


COLUMNS = (
    ("instr", "counts"),
    ("instr/MAC", "per_mac"),
    ("flash B", "flash"),
    ("RAM B", "ram"),
    ("model RAM B", "model_ram"),
    ("arena B", "arena"),
    ("diff LSB", "diff"),
)


def _macs(record: dict[str, Any]) -> str:
    r0 = next(iter(record["backends"].values()), None)
    return f"{r0['macs']:,}" if r0 else "-"


def ratios(record: dict[str, Any]) -> dict[str, float] | None:
    """Own / TFLM with CMSIS-NN kernels: instructions per inference, model RAM (TFLM's without
    the bench's input copies) and flash (both whole images with the same bench runtime; TFLM's
    registers only the model's ops). None when either side is missing."""
    own, tflm = record["backends"].get("own"), record["backends"].get("tflm-cmsis")
    if own is None or tflm is None:
        return None
    own_ram, tflm_ram = _model_ram(record, "own"), _model_ram(record, "tflm-cmsis")
    return {
        "instr": own["latency_counts"] / tflm["latency_counts"],
        "ram": own_ram / tflm_ram if own_ram and tflm_ram else math.nan,
        "flash": own["flash_bytes"] / tflm["flash_bytes"],
    }


def geomean(values: Sequence[float]) -> float:
    good = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in good) / len(good)) if good else math.nan


def ratio_rows(records: Sequence[dict[str, Any]]) -> list[tuple[str, str, dict[str, float]]]:
    """(model, board, ratios) per pair, then geometric means per board and over all pairs;
    the reference layer is listed but left out of the means (the targets are for models)."""
    rows = []
    for rec in records:
        r = ratios(rec)
        if r is not None:
            rows.append((rec["model"], rec["board"], r))
    models = [row for row in rows if row[0] != REFERENCE_LAYER]
    means = []
    for board in dict.fromkeys(b for _, b, _ in models):
        part = [r for _, b, r in models if b == board]
        means.append((f"geometric mean ({len(part)} models)", board,
                      {k: geomean([r[k] for r in part]) for k in TARGETS}))  # fmt: skip
    if models:
        means.append((f"geometric mean ({len(models)} pairs)", "both",
                      {k: geomean([r[k] for _, _, r in models]) for k in TARGETS}))  # fmt: skip
    return rows + means


def _ratio_text(value: float, target: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.2f} {'yes' if value <= target else 'no'}"


def comparison_markdown(records: Sequence[dict[str, Any]]) -> str:
    """Per model and board: own / TFLM with CMSIS-NN kernels, each against its target."""
    head = ["model", "board"] + [f"{k} own/TFLM (<= {t})" for k, t in TARGETS.items()]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, board, r in ratio_rows(records):
        cells = [model, board] + [_ratio_text(r[k], t) for k, t in TARGETS.items()]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def comparison_table(records: Sequence[dict[str, Any]]) -> Table:
    t = Table(title="own / TFLM with CMSIS-NN kernels (issue 11 targets: instructions <= 0.9, "
              "model RAM <= 0.75, flash <= 0.7)")  # fmt: skip
    for name in ("model", "board", "instr", "RAM", "flash"):
        t.add_column(name, justify="left" if name in ("model", "board") else "right")
    for model, board, r in ratio_rows(records):
        t.add_row(model, board, *(_ratio_text(r[k], v) for k, v in TARGETS.items()))
    return t


def table(records: Sequence[dict[str, Any]], variants: Sequence[str]) -> Table:
    t = Table(title="backends side by side (QEMU icount: instructions; RAM = static + stack)")
    for name in ("model", "board", "MACs", "backend", *(title for title, _ in COLUMNS)):
        t.add_column(name, justify="left" if name in ("model", "board", "backend") else "right")
    for rec in records:
        for v in variants:
            t.add_row(rec["model"], rec["board"], _macs(rec), v,
                      *(_cell(rec, v, what) for _, what in COLUMNS))  # fmt: skip
    return t


def markdown(records: Sequence[dict[str, Any]], variants: Sequence[str]) -> str:
    """The same figures as one Markdown table per board (for docs/backends.md)."""
    out = []
    for board in dict.fromkeys(r["board"] for r in records):
        head = ["model", "MACs", "backend", *(title for title, _ in COLUMNS)]
        out += [f"**{board}**\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for rec in (r for r in records if r["board"] == board):
            for i, v in enumerate(variants):
                first = [rec["model"], _macs(rec)] if i == 0 else ["", ""]
                row = first + [v] + [_cell(rec, v, what) for _, what in COLUMNS]
                out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def reference_layer_markdown(records: Sequence[dict[str, Any]]) -> str:
    """Instructions per MAC of the reference layer, measured here and as DESIGN.md gives them."""
    out = ["| board | measured here | measured before the backends (design notes) |",
           "|---|---|---|"]  # fmt: skip
    for rec in records:
        if rec["model"] != REFERENCE_LAYER:
            continue
        here = ", ".join(
            f"{v} {r['counts_per_mac']:.2f}" for v, r in rec["backends"].items()
            if r.get("counts_per_mac")
        )  # fmt: skip
        design = ", ".join(f"{k} {v:.2f}" for k, v in DESIGN_REFERENCE_LAYER.get(
            rec["board"], {}).items())  # fmt: skip
        out.append(f"| {rec['board']} | {here} | {design} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", default=list(BOARDS))
    parser.add_argument("--models", nargs="+", type=Path, help="models (default: see above)")
    parser.add_argument("--backends", nargs="+", choices=list(VARIANTS), help="default: all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every report as JSON")
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier --json")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    args = parser.parse_args(argv)

    console = Console(width=240, stderr=True)
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        records, variants = data["records"], data["variants"]
    else:
        wanted = args.backends or list(VARIANTS)
        variants = []
        for v in wanted:
            why = unavailable(v)
            if why:
                console.print(f"[yellow]{v}: not run: {why}[/]")
            else:
                variants.append(v)
        records = []
        for board in args.boards:
            for model in args.models or default_models():
                console.print(f"[dim]{model.name} on {board} ...[/]")
                rec = measure(model, board, variants, args.runs)
                for v, why in rec["failed"].items():
                    console.print(f"[red]{model.name} on {board} with {v}: {why}[/]")
                records.append(rec)
        if args.json:
            data = {
                "schema_version": RESULTS_SCHEMA_VERSION,
                "date": datetime.date.today().isoformat(),
                "host": platform.node(),
                "runs": args.runs,
                "variants": variants,
                "records": records,
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(data, indent=1) + "\n")
    out = Console(width=240)
    out.print(table(records, variants))
    out.print(comparison_table(records))
    if args.markdown:
        print(markdown(records, variants))
        print(reference_layer_markdown(records))
        print(comparison_markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
