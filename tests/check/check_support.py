"""Helpers for the `hil check` tests: canned reports, a scripted hil.profile, checks files."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from hil.errors import TargetTimeout
from hil.report import Report

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "examples" / "models"
DSCNN = MODELS / "digits-dscnn.tflite"
MOBILENET = MODELS / "digits-mobilenetv3.tflite"

#: Figures of the canned report: 4.6875 ms (300,000 counts at 64 MHz), 12,000 B RAM, 40,000 B
#: flash, outputs exact.
BASE = {
    "latency_counts": 300_000,
    "latency_ms": 4.6875,
    "ram_bytes": 12_000,
    "flash_bytes": 40_000,
    "max_abs_diff": 0.0,
}


def make_report(board: str = "qemu-m4", model: str = "m", **changes: Any) -> Report:
    """A real Report with plausible figures; `changes` override any field."""
    values: dict[str, Any] = dict(
        board=board,
        model=model,
        timing_source="qemu-icount",
        timing_note="instructions executed under QEMU",
        runs=3,
        warmup=1,
        static_ram_bytes=10_000,
        arena_bytes=8_000,
        stack_bytes=2_000,
        macs=100_000,
        params=5_000,
        outputs_exact_rate=1.0,
        **BASE,
    )
    values.update(changes)
    known = {f.name for f in fields(Report)}
    return Report(**{k: v for k, v in values.items() if k in known})


class ScriptedProfile:
    """Stands in for hil.profile: per (model stem, board) a list of outcomes, one per call.

    An outcome is a dict of report changes, or an exception to raise. The last outcome repeats.
    Records calls and the largest number of calls running at once.
    """

    def __init__(
        self,
        script: dict[tuple[str, str], list[dict[str, Any] | BaseException]] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.script = script or {}
        self.delay = delay
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.spans: dict[tuple[str, str], tuple[float, float]] = {}
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(
        self, model: Path, board: str, *, runs: int, warmup: int, seed: int, progress: bool
    ) -> Report:
        key = (Path(model).stem, board)
        with self._lock:
            n = sum(1 for m, b, _ in self.calls if (m, b) == key)
            self.calls.append((key[0], board, {"runs": runs, "warmup": warmup, "seed": seed}))
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        start = time.monotonic()
        try:
            time.sleep(self.delay)
            outcomes = self.script.get(key, [{}])
            outcome = outcomes[min(n, len(outcomes) - 1)]
            if isinstance(outcome, BaseException):
                raise outcome
            return make_report(board=board, model=key[0], **outcome)
        finally:
            with self._lock:
                self.running -= 1
                self.spans[key] = (start, time.monotonic())


def timeout() -> TargetTimeout:
    return TargetTimeout("no answer from the target within 20 s (request RUN)")


def write_checks(tmp_path: Path, body: str, name: str = "checks.toml") -> Path:
    """A checks file in tmp_path whose models live next to it (copies of the bundled ones)."""
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for src in (DSCNN, MOBILENET):
        target = models / src.name
        if not target.exists():
            target.write_bytes(src.read_bytes())
    path = tmp_path / name
    path.write_text(body)
    return path


ProfileFn = Callable[..., Report]
