"""Instructions per MAC of the bench's kernels on each QEMU board, with flash and RAM.

Rows: the reference layer of DESIGN.md (input 32x32x16, 3x3 conv, 32 output channels,
stride 1, same padding: 4.72 M MACs), built as a one-layer Keras model and converted to full
int8, then every .tflite in examples/models/ and ../shared/models/. DESIGN.md lists what
CMSIS-NN and TFLM reach on the same stand-ins, for comparison.

    .venv/bin/python benchmarks/instructions_per_mac.py [--boards qemu-m4 qemu-m0] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import hil
from hil.boards import list_boards
from hil.build import cache_dir
from hil.errors import HilError

REPO = Path(__file__).resolve().parent.parent
MODEL_DIRS = [REPO / "examples" / "models", REPO.parent / "shared" / "models"]


def reference_layer(path: Path) -> Path:
    """The 32x32x16 -> 32 channel 3x3 conv as a full-int8 .tflite (converted once, cached)."""
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 16), batch_size=1)
    model = keras.Model(inp, keras.layers.Conv2D(32, 3, padding="same")(inp))
    rng = np.random.default_rng(0)

    def representative() -> Iterator[list[np.ndarray]]:
        for _ in range(8):
            yield [rng.normal(0.0, 1.0, (1, 32, 32, 16)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):
        data = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def qemu_boards() -> list[str]:
    return [b.name for b in list_boards() if b.run.kind == "qemu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", help="boards (default: every QEMU board)")
    parser.add_argument("--models", nargs="+", type=Path, help="models (default: see above)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    models = args.models or [
        reference_layer(cache_dir() / "benchmarks" / "reference_conv.tflite"),
        *sorted(p for d in MODEL_DIRS if d.is_dir() for p in d.glob("*.tflite")),
    ]
    table = Table(title="instructions per MAC under QEMU icount (1 instruction = 1 ns)")
    for col in ("model", "board", "MACs", "instr/MAC", "ms", "flash KiB", "RAM KiB", "outputs"):
        table.add_column(col, justify="left" if col in ("model", "board") else "right")
    failed = False
    for model in models:
        for board in args.boards or qemu_boards():
            try:
                r = hil.profile(model, board, runs=args.runs, warmup=1, progress=False)
            except HilError as exc:
                table.add_row(model.stem, board, "-", "-", "-", "-", "-", f"[red]{exc}[/]")
                failed = True
                continue
            per_mac = f"{r.counts_per_mac:.2f}" if r.counts_per_mac else "-"
            table.add_row(
                model.stem,
                board,
                f"{r.macs:,}",
                per_mac,
                f"{r.latency_ms:.2f}",
                f"{r.flash_bytes / 1024:.1f}",
                f"{r.ram_bytes / 1024:.1f}",
                "match" if r.outputs_match else f"[red]diff {r.max_abs_diff:g}[/]",
            )
            failed |= not r.outputs_match
    (Console() if sys.stdout.isatty() else Console(width=160)).print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
