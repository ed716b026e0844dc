"""The checks file (`hil check CHECKS.toml`): which models run on which boards, within what.

```toml
runs = 3                       # measured runs per case (default 3; QEMU counts repeat exactly)
baseline = "checks-baseline.json"   # compared with when it exists; --update-baseline writes it
[tolerance]                    # regression tolerances vs the baseline (default "0" each)
latency = "+2%"
flash = "+1 KiB"

[[check]]
model = "models/digits-dscnn.tflite"  # a path or glob, or a list of them
boards = ["qemu-m4", "qemu-m0"]       # default ["qemu-m4"]
max_latency_ms = 60                   # budgets, all optional
max_ram_kb = 16
```
Relative paths are relative to the checks file's folder, so the file works from any directory.
Every error names the file, the check and the key, and says what is allowed.
"""

from __future__ import annotations

import glob
import inspect
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.check.baseline import Tolerance, parse_tolerance, parse_tolerances
from hil.errors import BoardError, HilError
from hil.measure import MAX_LSB_DIFF

#: Budget keys of a check: (unit shown in messages, what it limits).
BUDGET_KEYS: dict[str, str] = {
    "max_latency_ms": "ms",
    "max_latency_counts": "counts",
    "max_ram_kb": "KiB",
    "max_flash_kb": "KiB",
    "max_lsb_diff": "LSB",
}
DEFAULT_BOARDS = ("qemu-m4",)
DEFAULT_RUNS = 3
DEFAULT_WARMUP = 1

_TOP_KEYS = ("runs", "warmup", "seed", "jobs", "baseline", "tolerance", "check")
_CHECK_KEYS = (
    "model",
    "name",
    "board",
    "boards",
    "backends",
    *BUDGET_KEYS,
    "runs",
    "warmup",
    "seed",
    "tolerance",
)
_GLOB_CHARS = frozenset("*?[")


class CheckConfigError(HilError):
    """The checks file is missing, not TOML, or has a key with a value that is not allowed."""


@dataclass(frozen=True)
class CheckCase:
    """One model on one board (and backend): one line of the table, one JUnit testcase."""

    name: str
    model: Path
    model_label: str
    board: str
    backend: str | None
    budgets: Mapping[str, float]
    runs: int
    warmup: int
    seed: int
    tolerances: Mapping[str, Tolerance]

    @property
    def id(self) -> str:
        """Stable key of this case in baselines: name/board[/backend]."""
        parts = [self.name, self.board] + ([self.backend] if self.backend else [])
        return "/".join(parts)

    @property
    def max_lsb_diff(self) -> float:
        return self.budgets.get("max_lsb_diff", MAX_LSB_DIFF)


@dataclass(frozen=True)
class CheckFile:
    """A parsed checks file: its cases in file order, run settings and baseline path."""

    path: Path
    cases: list[CheckCase]
    jobs: int | None = None
    baseline: Path | None = None
    tolerances: Mapping[str, Tolerance] = field(default_factory=dict)


def load_checks(path: str | Path) -> CheckFile:
    """Read and validate a checks file; CheckConfigError says what is wrong and where."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CheckConfigError(
            f"checks file {path} does not exist; see examples/checks.toml for one"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckConfigError(f"cannot read checks file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CheckConfigError(f"{path} is not valid TOML: {exc}") from exc
    return _Parser(path).parse(data)


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.resolve().parent

    def error(self, where: str, message: str) -> CheckConfigError:
        return CheckConfigError(f"{self.path}: {where}{message}")

    def parse(self, data: dict[str, Any]) -> CheckFile:
        self.unknown(data, _TOP_KEYS, "")
        runs = self.integer(data, "runs", "", DEFAULT_RUNS, minimum=1)
        warmup = self.integer(data, "warmup", "", DEFAULT_WARMUP, minimum=0)
        seed = self.integer(data, "seed", "", 0, minimum=None)
        jobs = self.integer(data, "jobs", "", None, minimum=1)
        baseline = None
        if "baseline" in data:
            value = data["baseline"]
            if not isinstance(value, str) or not value:
                raise self.error("", f"'baseline' must be a file path (a string), not {value!r}")
            baseline = self.resolve(value)
        tolerances = self.tolerances(data, "", None)
        checks = data.get("check")
        if not isinstance(checks, list) or not checks:
            raise self.error(
                "",
                "needs at least one [[check]] table, e.g.\n"
                '  [[check]]\n  model = "model.tflite"\n  boards = ["qemu-m4"]',
            )
        cases: list[CheckCase] = []
        seen: dict[str, str] = {}
        for i, table in enumerate(checks, start=1):
            if not isinstance(table, dict):
                raise self.error(f"check #{i}: ", "must be a table ([[check]])")
            for case in self.check(table, i, runs, warmup, seed, tolerances):
                where = _where(i, table)
                if case.id in seen:
                    raise self.error(
                        f"{where}: ",
                        f"case {case.id!r} is already defined by {seen[case.id]}; give one of "
                        "the checks a different 'name'",
                    )
                seen[case.id] = f"check #{i}"
                cases.append(case)
        return CheckFile(self.path, cases, jobs, baseline, tolerances)

    def check(
        self,
        table: dict[str, Any],
        index: int,
        runs: int,
        warmup: int,
        seed: int,
        tolerances: Mapping[str, Tolerance],
    ) -> list[CheckCase]:
        where = _where(index, table) + ": "
        self.unknown(table, _CHECK_KEYS, where)
        models = self.models(table, where)
        name = table.get("name")
        if name is not None:
            if not isinstance(name, str) or not name.strip() or "/" in name:
                raise self.error(
                    where, f"'name' must be a non-empty string without '/', not {name!r}"
                )
            if len(models) > 1:
                raise self.error(
                    where,
                    f"'name' names one model but 'model' gives {len(models)}; drop 'name' (each "
                    "model is then named after its file) or split the check",
                )
        boards = self.boards(table, where)
        backends = self.backends(table, where)
        budgets = self.budgets(table, where)
        runs = self.integer(table, "runs", where, runs, minimum=1)
        warmup = self.integer(table, "warmup", where, warmup, minimum=0)
        seed = self.integer(table, "seed", where, seed, minimum=None)
        tolerances = self.tolerances(table, where, tolerances)
        return [
            CheckCase(
                name=name or model.stem,
                model=model,
                model_label=_label(model, self.root),
                board=board,
                backend=backend,
                budgets=budgets,
                runs=runs,
                warmup=warmup,
                seed=seed,
                tolerances=tolerances,
            )
            for model in models
            for board in boards
            for backend in backends
        ]

    def models(self, table: dict[str, Any], where: str) -> list[Path]:
        if "model" not in table:
            raise self.error(where, "missing 'model' (a .tflite path or glob, or a list of them)")
        value = table["model"]
        patterns = [value] if isinstance(value, str) else value
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p for p in patterns)
        ):
            raise self.error(
                where, f"'model' must be a path or glob, or a list of them, not {value!r}"
            )
        found: list[Path] = []
        for pattern in patterns:
            full = self.resolve(pattern)
            if _GLOB_CHARS.intersection(pattern):
                matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
                matches = [m for m in matches if m.is_file()]
                if not matches:
                    raise self.error(
                        where,
                        f"'model' pattern {pattern!r} matches no file (looked in {self.root})",
                    )
                found += matches
            elif not full.is_file():
                raise self.error(
                    where,
                    f"model {pattern!r} does not exist ({full}); paths are relative to the "
                    "checks file's folder",
                )
            else:
                found.append(full)
        return list(dict.fromkeys(found))

    def boards(self, table: dict[str, Any], where: str) -> list[str]:
        from hil.boards import load_board

        if "board" in table and "boards" in table:
            raise self.error(where, "give 'board' or 'boards', not both")
        if "board" in table:
            value = table["board"]
            boards = [value] if isinstance(value, str) else None
            if boards is None:
                raise self.error(where, f"'board' must be a board name (a string), not {value!r}")
        elif "boards" in table:
            boards = table["boards"]
            if (
                not isinstance(boards, list)
                or not boards
                or not all(isinstance(b, str) for b in boards)
            ):
                raise self.error(
                    where, f"'boards' must be a non-empty list of board names, not {boards!r}"
                )
        else:
            boards = list(DEFAULT_BOARDS)
        for board in boards:
            try:
                load_board(board)
            except BoardError as exc:
                raise self.error(where, f"'boards': {exc}") from exc
        return list(dict.fromkeys(boards))

    def backends(self, table: dict[str, Any], where: str) -> list[str | None]:
        if "backends" not in table:
            return [None]
        value = table["backends"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(b, str) and b for b in value)
        ):
            raise self.error(where, f"'backends' must be a non-empty list of names, not {value!r}")
        if not profile_takes_backend():
            raise self.error(
                where,
                "'backends': this version of the bench has one backend (its own kernels) and "
                "hil.profile takes no backend; remove the key",
            )
        from hil.backends import BACKEND_NAMES

        unknown = [b for b in value if b not in BACKEND_NAMES]
        if unknown:
            known = ", ".join(BACKEND_NAMES)
            raise self.error(where, f"'backends': unknown backend {unknown[0]!r}; known: {known}")
        return list(dict.fromkeys(value))

    def budgets(self, table: dict[str, Any], where: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, unit in BUDGET_KEYS.items():
            if key not in table:
                continue
            value = table[key]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if key == "max_lsb_diff":
                if not ok or not 0 <= value <= MAX_LSB_DIFF:
                    raise self.error(
                        where,
                        f"'max_lsb_diff' must be a number from 0 to {MAX_LSB_DIFF:g} (the bench "
                        f"never accepts outputs more than {MAX_LSB_DIFF:g} LSB off), not {value!r}",
                    )
            elif not ok or not math.isfinite(value) or value <= 0:
                raise self.error(
                    where, f"{key!r} must be a positive number of {unit}, not {value!r}"
                )
            out[key] = float(value)
        return out

    def tolerances(
        self, table: dict[str, Any], where: str, base: Mapping[str, Tolerance] | None
    ) -> dict[str, Tolerance]:
        value = table.get("tolerance", {})
        if not isinstance(value, dict):
            raise self.error(
                where, f"'tolerance' must be a table such as {{ latency = \"+2%\" }}, not {value!r}"
            )
        for metric, text in value.items():
            try:
                parse_tolerance(metric, text)
            except ValueError as exc:
                raise self.error(where, f"'tolerance.{metric}' {exc}") from exc
        return parse_tolerances(value, base)

    def integer(
        self, table: dict[str, Any], key: str, where: str, default: Any, *, minimum: int | None
    ) -> Any:
        if key not in table:
            return default
        value = table[key]
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (minimum is not None and value < minimum)
        ):
            allowed = "an integer" if minimum is None else f"an integer of at least {minimum}"
            raise self.error(where, f"{key!r} must be {allowed}, not {value!r}")
        return value

    def unknown(self, table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        extra = [k for k in table if k not in allowed]
        if extra:
            raise self.error(
                where,
                f"unknown key {extra[0]!r}; allowed keys here: {', '.join(allowed)}",
            )

    def resolve(self, text: str) -> Path:
        p = Path(os.path.expanduser(text))
        return p if p.is_absolute() else self.root / p


def _where(index: int, table: dict[str, Any]) -> str:
    """How errors name a check: its number and, when it is one string, its model."""
    model = table.get("model")
    return f"check #{index} ({model})" if isinstance(model, str) else f"check #{index}"


def _label(model: Path, root: Path) -> str:
    """The model's path as stored in results: relative to the checks file when inside it."""
    try:
        return model.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(model)


def profile_takes_backend() -> bool:
    """Whether this bench's hil.profile has a `backend` parameter (backends are optional)."""
    import importlib

    fn = importlib.import_module("hil.profile").profile
    return "backend" in inspect.signature(fn).parameters
