"""Instructions per MAC of the bench's kernels on each QEMU board, per model and per op kind.

Models: the reference layer of DESIGN.md (input 32x32x16, 3x3 conv, 32 output channels,
stride 1, same padding: 4.72 M MACs) and one single-layer model per op kind the kernels
specialise (1x1 conv, 3x3 depthwise with channel multiplier 1, stride 1 and 2, fully
connected), each built as a Keras model and converted to full int8 (cached), then every
.tflite in examples/models/ and ../shared/models/. DESIGN.md lists what CMSIS-NN and TFLM
reach on the same stand-ins, for comparison.

The first table is per model; the second splits every model's layers into op kinds
(conv kxk, conv 1x1, depthwise, fully connected, other) and gives instructions per MAC of each
kind summed over its layers, so a regression in one kernel shows even inside a whole model.

    .venv/bin/python benchmarks/instructions_per_mac.py [--boards qemu-m4 qemu-m0] [--runs 3]
    .venv/bin/python benchmarks/instructions_per_mac.py --layers-only   # synthetic layers
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import hil
from hil.boards import list_boards
from hil.build import cache_dir
from hil.errors import HilError
from hil.importer import load_tflite

REPO = Path(__file__).resolve().parent.parent
MODEL_DIRS = [REPO / "examples" / "models", REPO.parent / "shared" / "models"]

#: name -> (input shape without batch, layer factory taking the keras module)
LAYERS: dict[str, tuple[tuple[int, ...], Callable[[Any], Any]]] = {
    "reference_conv": ((32, 32, 16), lambda k: k.layers.Conv2D(32, 3, padding="same")),
    "conv1x1_16x16x32_64": ((16, 16, 32), lambda k: k.layers.Conv2D(64, 1)),
    "depthwise3x3_32x32x32": (
        (32, 32, 32),
        lambda k: k.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
    ),
    "depthwise3x3_s2_32x32x32": (
        (32, 32, 32),
        lambda k: k.layers.DepthwiseConv2D(3, strides=2, padding="same"),
    ),
    "fc_512_128": ((512,), lambda k: k.layers.Dense(128, activation="relu")),
}
#: Bump when a LAYERS entry changes (the cache file name holds it).
LAYERS_VERSION = "1"
KINDS = ("conv kxk", "conv 1x1", "depthwise", "fully conn.", "other")


def keras_layer(name: str, path: Path) -> Path:
    """LAYERS[name] as a full-int8 .tflite with seeded weights (converted once, cached)."""
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    shape, layer = LAYERS[name]
    inp = keras.Input(shape, batch_size=1)
    model = keras.Model(inp, layer(keras)(inp))
    rng = np.random.default_rng(0)

    def representative() -> Iterator[list[np.ndarray]]:
        for _ in range(8):
            # Off-centre so that the input zero point is not 0, as in real models.
            yield [rng.normal(0.4, 1.0, (1, *shape)).astype(np.float32)]

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


def reference_layer(path: Path) -> Path:
    """The 32x32x16 -> 32 channel 3x3 conv of DESIGN.md as a full-int8 .tflite (cached)."""
    return keras_layer("reference_conv", path)


def layer_models() -> list[Path]:
    """Every LAYERS entry as a cached .tflite (the reference conv keeps its old file name)."""
    root = cache_dir() / "benchmarks"
    out = [reference_layer(root / "reference_conv.tflite")]
    out += [
        keras_layer(name, root / f"{name}-v{LAYERS_VERSION}.tflite")
        for name in LAYERS
        if name != "reference_conv"
    ]
    return out


def op_kinds(model: Path) -> dict[int, str]:
    """Operator index -> op kind of KINDS (1x1 and kxk convolutions apart)."""
    graph = load_tflite(model, check_support=False)
    kinds: dict[int, str] = {}
    for op in graph.operators:
        if op.op == "CONV_2D":
            k_h, k_w = graph.tensor(op.inputs[1]).shape[1:3]
            kinds[op.index] = "conv 1x1" if (k_h, k_w) == (1, 1) else "conv kxk"
        elif op.op == "DEPTHWISE_CONV_2D":
            kinds[op.index] = "depthwise"
        elif op.op == "FULLY_CONNECTED":
            kinds[op.index] = "fully conn."
        else:
            kinds[op.index] = "other"
    return kinds


def qemu_boards() -> list[str]:
    return [b.name for b in list_boards() if b.run.kind == "qemu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="+", help="boards (default: every QEMU board)")
    parser.add_argument("--models", nargs="+", type=Path, help="models (default: see above)")
    parser.add_argument("--layers-only", action="store_true", help="only the synthetic layers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    if args.models:
        models = args.models
    else:
        models = layer_models()
        if not args.layers_only:
            models += sorted(p for d in MODEL_DIRS if d.is_dir() for p in d.glob("*.tflite"))
    table = Table(title="instructions per MAC under QEMU icount (1 instruction = 1 ns)")
    for col in ("model", "board", "MACs", "instr/MAC", "ms", "flash KiB", "RAM KiB",
                "model RAM KiB", "outputs"):
        table.add_column(col, justify="left" if col in ("model", "board") else "right")
    kinds_table = Table(title="instructions per MAC by op kind (layers of that kind summed)")
    for col in ("model", "board", *KINDS):
        kinds_table.add_column(col, justify="left" if col in ("model", "board") else "right")
    figures: list[dict[str, Any]] = []
    failed = False
    for model in models:
        kinds = op_kinds(model)
        for board in args.boards or qemu_boards():
            try:
                r = hil.profile(model, board, runs=args.runs, warmup=1, progress=False)
            except HilError as exc:
                table.add_row(model.stem, board, *["-"] * 6, f"[red]{exc}[/]")
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
                f"{r.model_ram_bytes / 1024:.1f}",
                "match" if r.outputs_match else f"[red]diff {r.max_abs_diff:g}[/]",
            )
            failed |= not r.outputs_match
            sums = {k: [0, 0] for k in KINDS}
            for layer in r.layers:
                s = sums[kinds.get(layer.index, "other")]
                s[0] += layer.counts
                s[1] += layer.macs
            cells = {
                k: (f"{c / m:.2f}" if m else ("-" if not c else f"{c:,} instr"))
                for k, (c, m) in sums.items()
            }
            kinds_table.add_row(model.stem, board, *(cells[k] for k in KINDS))
            figures.append(
                {
                    "model": model.stem,
                    "board": board,
                    "macs": r.macs,
                    "instructions_per_mac": r.counts_per_mac,
                    "flash_bytes": r.flash_bytes,
                    "ram_bytes": r.ram_bytes,
                    "model_ram_bytes": r.model_ram_bytes,
                    "outputs_match": r.outputs_match,
                    "kinds": {k: {"counts": c, "macs": m} for k, (c, m) in sums.items() if c},
                }
            )
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table)
    console.print(kinds_table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
