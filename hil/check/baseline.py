"""Baselines: an earlier `hil check --json` file, and per-metric tolerances for regressions.

A baseline is the JSON that `hil check --json` writes (the same file `--update-baseline`
writes). A case regresses when a metric grew by more than its tolerance over the baseline's
figure for the same case (same check name, board and backend). Improvements never fail.

Tolerances, one per metric (`latency`, `ram`, `flash`, `lsb`), written as:
  "0"          no increase at all (QEMU's instruction counts repeat exactly, so this works there)
  "+2%"        at most 2 % more than the baseline figure
  "+1 KiB"     at most 1 KiB more (ram, flash: B, KiB or KB (1024), MiB; a bare number is bytes)
  "+0.05 ms"   at most 0.05 ms more (latency: ms, us, or counts; a bare number is counts)
  "1"          lsb: at most 1 LSB more
Latency is compared in counts (instructions, cycles or ticks) when both runs name the same
timing source, and in ms otherwise.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import HilError

#: The format of `hil check --json` files (and baselines). Bump on incompatible changes.
SCHEMA = "hil-check/1"

#: Metrics a tolerance can be set for.
METRICS = ("latency", "ram", "flash", "lsb")
#: Tolerance of a metric the checks file leaves unset: no increase at all.
DEFAULT_TOLERANCE = "0"

_NUMBER = r"(?P<num>\d+(?:\.\d*)?|\.\d+)"
_TOLERANCE = re.compile(rf"^\+?\s*{_NUMBER}\s*(?P<unit>%|[A-Za-z]+)?$")
_BYTE_UNITS = {"b": 1, "kib": 1024, "kb": 1024, "k": 1024, "mib": 1024 * 1024, "mb": 1024 * 1024}
_COUNT_UNITS = ("counts", "count", "instructions", "cycles", "ticks")
_ALLOWED = {
    "latency": 'a percentage ("+2%"), ms or us ("+0.05 ms"), or counts ("+1000")',
    "ram": 'a percentage ("+2%") or bytes ("+512", "+1 KiB", "+0.5 MiB")',
    "flash": 'a percentage ("+2%") or bytes ("+512", "+1 KiB", "+0.5 MiB")',
    "lsb": 'a number of LSB ("0", "1")',
}


class BaselineError(HilError):
    """A baseline file or a tolerance is unusable."""


@dataclass(frozen=True)
class Tolerance:
    """How much a metric may grow over the baseline before it is a regression.

    `percent` is relative to the baseline figure; otherwise `amount` is absolute, in the unit
    of `field` (bytes, counts, ms or LSB). `text` is what the user wrote.
    """

    metric: str
    text: str
    percent: float | None = None
    amount: float = 0.0
    field: str = ""

    def allowed(self, old: float) -> float:
        """The largest increase over `old` that is not a regression."""
        if self.percent is not None:
            return abs(old) * self.percent / 100.0
        return self.amount


def parse_tolerance(metric: str, value: object) -> Tolerance:
    """Parse one tolerance; ValueError says what is allowed for `metric`."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; tolerances exist for {', '.join(METRICS)}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"must be a string or a number: {_ALLOWED[metric]}; got {value!r}")
    text = str(value).strip()
    match = _TOLERANCE.match(text)
    if match is None:
        raise ValueError(f"must be {_ALLOWED[metric]} (never negative); got {value!r}")
    number = float(match["num"])
    unit = (match["unit"] or "").lower()
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number; got {value!r}")
    if metric == "latency":
        if unit == "%":
            return Tolerance(metric, text, percent=number, field="latency_counts")
        if unit == "ms":
            return Tolerance(metric, text, amount=number, field="latency_ms")
        if unit == "us":
            return Tolerance(metric, text, amount=number / 1000.0, field="latency_ms")
        if unit in ("", *_COUNT_UNITS):
            return Tolerance(metric, text, amount=number, field="latency_counts")
    elif metric in ("ram", "flash"):
        field = f"{metric}_bytes"
        if unit == "%":
            return Tolerance(metric, text, percent=number, field=field)
        if unit == "" or unit in _BYTE_UNITS:
            return Tolerance(metric, text, amount=number * _BYTE_UNITS.get(unit, 1), field=field)
    elif unit in ("", "lsb"):
        return Tolerance(metric, text, amount=number, field="max_abs_diff")
    raise ValueError(f"unit {match['unit']!r} does not fit {metric}: use {_ALLOWED[metric]}")


def parse_tolerances(
    table: Mapping[str, object], base: Mapping[str, Tolerance] | None = None
) -> dict[str, Tolerance]:
    """Every metric's tolerance: `table` over `base` over the default ("0")."""
    out = (
        dict(base)
        if base is not None
        else {m: parse_tolerance(m, DEFAULT_TOLERANCE) for m in METRICS}
    )
    for metric, value in table.items():
        out[metric] = parse_tolerance(metric, value)
    return out


@dataclass(frozen=True)
class MetricChange:
    """One metric of one case: the baseline's figure, the new one, and the verdict."""

    metric: str
    field: str
    old: float
    new: float
    allowed: float
    tolerance: str

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def percent(self) -> float | None:
        """Change relative to the baseline, in percent (None when the baseline is 0)."""
        return 100.0 * self.delta / abs(self.old) if self.old else None

    @property
    def regressed(self) -> bool:
        # A relative slack absorbs float noise in ms figures; counts and bytes are integers.
        return self.delta > self.allowed + 1e-9 * max(1.0, abs(self.old))

    def describe(self) -> str:
        """E.g. 'latency +3.1% (1,200,000 -> 1,237,200 counts; tolerance +2%)'."""
        unit = _FIELD_UNITS.get(self.field, "")
        change = f"{self.percent:+.1f}%" if self.percent is not None else f"{self.delta:+g}"
        return (
            f"{self.metric} {change} ({format_figure(self.field, self.old)} -> "
            f"{format_figure(self.field, self.new)}{unit}; tolerance {self.tolerance})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "change": self.delta,
            "change_percent": self.percent,
            "tolerance": self.tolerance,
            "regressed": self.regressed,
        }


_FIELD_UNITS = {
    "latency_counts": " counts",
    "latency_ms": " ms",
    "ram_bytes": " B",
    "flash_bytes": " B",
    "max_abs_diff": " LSB",
}


def format_figure(field: str, value: float) -> str:
    """A figure as tables show it: counts and bytes with separators, ms with 3 decimals."""
    if field == "latency_ms":
        return f"{value:.3f}"
    if field in ("latency_counts", "ram_bytes", "flash_bytes"):
        return f"{value:,.0f}"
    return f"{value:g}"


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], tolerances: Mapping[str, Tolerance]
) -> list[MetricChange]:
    """Changes of every metric both figure sets have, in METRICS order.

    Latency given as a percentage or counts falls back to ms when the two runs used different
    timing sources (counts of different sources are not comparable).
    """
    changes = []
    for metric in METRICS:
        tol = tolerances[metric]
        field = tol.field
        same_source = old.get("timing_source") == new.get("timing_source")
        if field == "latency_counts" and not same_source:
            field = "latency_ms"
            if tol.percent is None:  # an absolute count means nothing across sources
                continue
        before, after = _number(old.get(field)), _number(new.get(field))
        if before is None or after is None:
            continue
        changes.append(MetricChange(metric, field, before, after, tol.allowed(before), tol.text))
    return changes


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def load_baseline(path: str | Path) -> dict[str, dict[str, Any]]:
    """The figures of each case id in a `hil check --json` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BaselineError(
            f"baseline {path} does not exist; write one with `hil check CHECKS.toml "
            f"--update-baseline --baseline {path}`"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise BaselineError(
            f"{path} is not a hil check baseline (schema {found!r}, expected {SCHEMA!r}); "
            "use a file written by `hil check --json` or `--update-baseline`"
        )
    results = data.get("results")
    if not isinstance(results, list):
        raise BaselineError(f"{path}: 'results' must be a list of cases")
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(results):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise BaselineError(f"{path}: results[{i}] has no string 'id'")
        figures = entry.get("figures")
        if isinstance(figures, dict) and figures:
            out[entry["id"]] = figures
    return out
