"""What lossless weight compression could buy on flash, and what it may cost in instructions.

Issue 11's flash target (own image <= 0.7x a TFLM image) is out of reach for a model whose
weights alone are most of TFLM's image. This script reads the own and TFLM-with-CMSIS-NN
measurements of one `benchmarks/backends.py` run and, per model and board, puts beside them:

- the int8 weight bytes as stored, and the zeroth-order entropy bound of those bytes (per
  tensor, Shannon entropy of its value histogram times its size): no lossless code that
  decodes each weight on its own (Huffman, ANS, nibble escapes) gets below it;
- the size with the simplest code that decodes without branches: each row (first axis: the
  output channel of FC and conv weights) packed at
  the smallest two's-complement width that holds its values (3 to 8 bits);
- the best image ratio the entropy bound could give (own image with its weights replaced by
  the bound, over TFLM's image), against the 0.7 target;
- the instruction headroom: how many instructions per weight a decoder may spend (each weight
  is read once per inference) before the own image misses the 0.9x instruction target.

    .venv/bin/python benchmarks/weight_entropy.py [--json benchmarks/results/backends.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from hil.importer.tflite_reader import load_tflite

REPO = Path(__file__).resolve().parent.parent
MODEL_DIRS = [REPO / "examples" / "models", REPO.parent / "shared" / "models"]
FLASH_TARGET = 0.7
INSTRUCTION_TARGET = 0.9


def signed_bits(values: np.ndarray) -> int:
    """Smallest two's-complement width holding every value."""
    bits = 1
    while values.min() < -(1 << (bits - 1)) or values.max() > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def weight_stats(path: Path) -> tuple[int, float, float]:
    """(int8 constant bytes, their entropy bound, their size packed per row) of a model."""
    stored = 0
    bound = 0.0
    packed = 0.0
    for tensor in load_tflite(path).tensors:
        if tensor.data is None or tensor.dtype != "int8":
            continue
        values = np.asarray(tensor.data, dtype=np.int64)
        flat = values.ravel()
        p = np.bincount(flat + 128, minlength=256) / flat.size
        p = p[p > 0]
        stored += flat.size
        bound += float(-(p * np.log2(p)).sum()) * flat.size / 8
        rows = values.reshape(values.shape[0], -1) if values.ndim >= 2 else flat[None, :]
        packed += sum(signed_bits(row) * row.size / 8 for row in rows)
    return stored, bound, packed


def find_model(name: str) -> Path | None:
    for folder in MODEL_DIRS:
        path = folder / name
        if path.exists():
            return path
    return None


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for record in results["records"]:
        own = record["backends"].get("own", {})
        tflm = record["backends"].get("tflm-cmsis", {})
        path = find_model(record["file"])
        if "flash_bytes" not in own or "flash_bytes" not in tflm or path is None:
            continue
        stored, bound, packed = weight_stats(path)
        headroom = INSTRUCTION_TARGET * tflm["latency_counts"] - own["latency_counts"]
        out.append(
            {
                "model": record["model"],
                "board": record["board"],
                "weight_bytes": stored,
                "entropy_bound_bytes": round(bound),
                "bits_per_weight": 8 * bound / stored if stored else 0.0,
                "row_packed_bytes": round(packed),
                "flash_ratio": own["flash_bytes"] / tflm["flash_bytes"],
                "flash_ratio_at_bound": (own["flash_bytes"] - stored + bound) / tflm["flash_bytes"],
                "decode_instructions_per_weight": headroom / stored if stored else 0.0,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results" / "backends.json"
    )
    args = parser.parse_args()
    table = Table(title=f"lossless weight compression bound (from {args.json.name})")
    for column in (
        "model",
        "board",
        "weights B",
        "bound B",
        "bits/w",
        "row-packed B",
        "flash own/TFLM",
        "at bound",
        "decode instr/w",
    ):
        table.add_column(column, justify="left" if column in ("model", "board") else "right")
    for row in rows(json.loads(args.json.read_text())):
        table.add_row(
            row["model"],
            row["board"],
            f"{row['weight_bytes']:,}",
            f"{row['entropy_bound_bytes']:,}",
            f"{row['bits_per_weight']:.2f}",
            f"{row['row_packed_bytes']:,}",
            f"{row['flash_ratio']:.2f}",
            f"{row['flash_ratio_at_bound']:.2f}",
            f"{row['decode_instructions_per_weight']:.2f}",
        )
    Console(width=120).print(table)
    print(
        f"flash target {FLASH_TARGET}x; decode budget = ({INSTRUCTION_TARGET} x TFLM's "
        "instructions - own instructions) / weights, each weight decoded once per inference"
    )


if __name__ == "__main__":
    main()
