"""`hil train CONFIG.toml --out DIR`: make one candidate from a config file.

Registered with the `hil` CLI through the entry-point group ``hil.commands``::

    [project.entry-points."hil.commands"]
    train = "optimizer.factory.cli:register"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from hil.argtypes import positive_float, positive_int
from optimizer.factory.candidate import prepare_out_dir, run_candidate
from optimizer.factory.config import CandidateConfig
from optimizer.factory.datasets import load_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand (the `hil.commands` entry-point contract)."""
    p = subparsers.add_parser(
        "train",
        help="train, prune and quantize one candidate model from a TOML config",
        description="Writes DIR/model.tflite (int8, ready for `hil profile`), DIR/record.json "
        "(hyperparameters, accuracies, size estimates) and DIR/train.log.",
    )
    p.add_argument("config", help="TOML config, e.g. examples/digits-resnet.toml")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--timeout", type=positive_float, default=None, metavar="S",
                   help="give up on the candidate after S seconds (S > 0)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="TensorFlow threads, at least 1 (default 1)")
    p.set_defaults(func=train)


def train(args: argparse.Namespace) -> int:
    """Run the candidate with a progress bar; 0 when a model was made, 1 when it failed.
    A bad config raises FactoryError, which the `hil` CLI prints without a traceback."""
    cfg = CandidateConfig.from_toml(args.config)
    # Refuse a bad dataset or --out before the progress bar starts, so the error is one line.
    load_dataset(cfg.dataset, cfg.seed)  # cached: run_candidate gets the same splits
    prepare_out_dir(Path(args.out))
    with tqdm(total=1, unit="step", desc="candidate", file=sys.stderr) as bar:

        def on_progress(done: int, total: int, label: str) -> None:
            bar.total = total
            bar.set_description(label)
            bar.update(done - bar.n)

        result = run_candidate(cfg, args.out, timeout_s=args.timeout, threads=args.threads,
                               on_progress=on_progress)
    if not result.ok:
        print(f"candidate failed: {result.reason} (details in {args.out}/train.log)",
              file=sys.stderr)
        return 1
    r = result.record
    print(
        f"validation accuracy float {r['val_accuracy_float']:.4f}, "
        f"int8 {r['val_accuracy_int8']:.4f}; test accuracy float "
        f"{r['test_accuracy_float']:.4f}, int8 {r['test_accuracy_int8']:.4f}\n"
        f"{r['params']} params, {r['macs']} MACs, ~{r['flash_bytes_estimate']} B flash, "
        f"~{r['ram_bytes_estimate']} B RAM; {r['training_seconds']:.1f} s\n"
        f"wrote {result.model_path} and {args.out}/record.json"
    )
    return 0
