"""Seconds per candidate of the candidate factory (targets: digits < 30 s, MNIST-5000 < 2 min
on a 2-core machine), for the example configs.

    .venv/bin/python benchmarks/factory_speed.py [--threads N]

`wall` is what a search waits per candidate: child start, TensorFlow import, data, training,
pruning, quantization, conversion and int8 evaluation. `pipeline` is the record's
training_seconds: the same without process start, imports and data loading.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from optimizer.factory.candidate import run_candidate
from optimizer.factory.config import CandidateConfig

ROOT = Path(__file__).resolve().parents[1]
CASES = [("digits-resnet", 30.0), ("mnist-resnet", 120.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per candidate")
    args = parser.parse_args()
    print(f"{'config':<16} {'wall s':>8} {'pipeline s':>11} {'target s':>9} "
          f"{'val int8':>9} {'test int8':>9}  verdict")
    for name, target in CASES:
        cfg = CandidateConfig.from_toml(ROOT / "examples" / f"{name}.toml")
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = run_candidate(cfg, out, threads=args.threads)
            wall = time.perf_counter() - start
        if not result.ok:
            print(f"{name:<16} failed: {result.reason}")
            continue
        r = result.record
        verdict = "ok" if wall < target else "OVER"
        print(f"{name:<16} {wall:8.1f} {r['training_seconds']:11.1f} {target:9.0f} "
              f"{r['val_accuracy_int8']:9.4f} {r['test_accuracy_int8']:9.4f}  {verdict}")


if __name__ == "__main__":
    main()
