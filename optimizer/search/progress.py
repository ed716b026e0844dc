"""Live progress of a search: one rich display on a terminal, plain log lines elsewhere.

The loop keeps a `SearchStatus` up to date and tells the display about events; the live
display redraws from the status (evaluations done of budget, current hypervolume, best
feasible value per objective, each worker's candidate and stage, failures so far), the plain
one prints a line per event. Every line also goes to RUN/search.log.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass
class WorkerRow:
    trial_id: int
    label: str  # where it runs
    params: str  # the varied hyperparameters, short
    status: str
    stage: str
    started: float


@dataclass
class SearchStatus:
    """What the display shows; the loop mutates it."""

    run_dir: str
    algorithm: str
    budget: int
    objectives: list[dict[str, Any]]
    finished: int = 0
    feasible: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    hypervolume: float = 0.0
    best: dict[str, tuple[float, int]] = field(default_factory=dict)
    workers: dict[int, WorkerRow] = field(default_factory=dict)
    asking: bool = False
    recent: list[str] = field(default_factory=list)


def format_value(value: float, unit: str, metric: str) -> str:
    if metric == "accuracy":
        return f"{value:.2%}"
    if unit == "B":
        return f"{value / 1024:,.1f} KiB"
    if unit == "ms":
        return f"{value:,.3f} ms"
    return f"{value:,.0f}"


class Display:
    """Plain lines (to stderr when it is not a terminal, and always to the log file)."""

    def __init__(self, status: SearchStatus, log_path: Path | None, stream: TextIO | None) -> None:
        self.status = status
        self._stream = stream
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._last_stage: dict[int, float] = {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def refresh(self) -> None:
        pass

    def line(self, text: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {text}"
        if self._log is not None:
            self._log.write(stamped + "\n")
            self._log.flush()
        if self._stream is not None:
            print(stamped, file=self._stream, flush=True)
        self.status.recent = [*self.status.recent[-4:], stamped]

    def stage(self, trial_id: int, status: str, stage: str) -> None:
        """Stage changes: every profiling step, training at most every 15 s per trial."""
        now = time.monotonic()
        if status == "training" and now - self._last_stage.get(trial_id, 0.0) < 15:
            return
        self._last_stage[trial_id] = now
        self.line(f"trial {trial_id} {status}: {stage}")


class LiveDisplay(Display):
    """A rich live panel on a terminal; lines scroll above it."""

    def __init__(self, status: SearchStatus, log_path: Path | None) -> None:
        super().__init__(status, log_path, None)
        self._console = Console(stderr=True)
        self._live = Live(console=self._console, refresh_per_second=2,
                          get_renderable=self._render, transient=False)

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()
        super().stop()

    def line(self, text: str) -> None:
        super().line(text)
        self._console.print(Text(text, style="dim"))

    def stage(self, trial_id: int, status: str, stage: str) -> None:
        pass  # shown in the worker table instead

    def _render(self) -> Group:
        s = self.status
        head = Text.assemble(
            ("search ", "bold"), (f"{s.run_dir}  ", ""), (f"{s.algorithm}  ", "cyan"),
            (f"{s.finished}/{s.budget} evaluations  ", "bold"),
            (f"hypervolume {s.hypervolume:.4f}  ", "green"),
            (f"feasible {s.feasible}  ", ""),
            (f"failed {sum(s.failures.values())}", "red" if s.failures else ""),
        )
        parts: list[Any] = [head]
        if s.failures:
            parts.append(Text("failures: " + ", ".join(f"{k} {n}" for k, n in
                                                      s.failures.most_common()), style="red"))
        best = Table(box=None, show_header=True, title=None, pad_edge=False)
        best.add_column("objective")
        best.add_column("best feasible", justify="right")
        best.add_column("trial", justify="right")
        for o in s.objectives:
            value = s.best.get(o["name"])
            text = "-" if value is None else format_value(value[0], o["unit"], o["metric"])
            best.add_row(f"{o['name']} ({o['sense']})", text,
                         "" if value is None else str(value[1]))
        parts.append(best)
        workers = Table(box=None, show_header=True, pad_edge=False)
        for name in ("trial", "stage", "time", "candidate"):
            workers.add_column(name)
        now = time.monotonic()
        for row in sorted(s.workers.values(), key=lambda r: r.trial_id):
            workers.add_row(str(row.trial_id), f"{row.status}: {row.stage}",
                            f"{now - row.started:,.0f} s", row.params)
        if s.asking:
            workers.add_row("-", f"{s.algorithm} is proposing the next candidates", "", "")
        if workers.row_count:
            parts.append(workers)
        return Group(*parts)


def make_display(status: SearchStatus, log_path: Path | None, mode: str = "auto") -> Display:
    """`mode`: "live", "plain" or "auto" (live on a terminal)."""
    if mode == "live" or (mode == "auto" and sys.stderr.isatty()):
        return LiveDisplay(status, log_path)
    return Display(status, log_path, sys.stderr)


__all__ = ["Display", "LiveDisplay", "SearchStatus", "WorkerRow", "format_value", "make_display"]
