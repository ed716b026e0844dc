"""Objectives and constraints of a search, on *measured* values, and what the optimizer is told.

A *metric* is one number a trial can yield: ``accuracy`` (the int8 model's validation accuracy
from the candidate record), ``test_accuracy`` (recorded and reported, never selectable),
``macs`` and ``params`` (counted by the bench; the factory's counts when no board report
exists), and per board ``flash_bytes@B``, ``ram_bytes@B`` and ``latency_ms@B`` from that
board's profile report. Objective and constraint names use these metric names.

The optimizer minimises and sees normalised values only: an objective value ``v`` is told as
``(v - ideal) / (reference - ideal)`` (0 at the ideal point, 1 at the reference point;
accuracy's ideal is 1, everything else's 0), a constraint ``m <= L`` as ``m / L - 1`` and
``m >= L`` as ``1 - m / L`` (feasible where <= 0). The hypervolume shown and stored is that of
the feasible told objective vectors inside the unit box: the normalised hypervolume of
`optimizer.hypervolume`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hil.errors import HilError


class SearchConfigError(HilError):
    """A search configuration is wrong; the message names the key and what is allowed."""


@dataclass(frozen=True)
class Metric:
    name: str
    sense: str  # "max" or "min": which way is better
    unit: str
    per_board: bool
    ideal: float
    help: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "max", "", False, 1.0, "int8 validation accuracy (candidate record)"),
        Metric("flash_bytes", "min", "B", True, 0.0, "flash of the image, from the ELF"),
        Metric("ram_bytes", "min", "B", True, 0.0, "static RAM + measured peak stack"),
        Metric("latency_ms", "min", "ms", True, 0.0, "median latency on the target"),
        Metric("macs", "min", "", False, 0.0, "multiply-accumulates per inference"),
        Metric("params", "min", "", False, 0.0, "weights and biases"),
    )
}
#: Short names accepted in `objectives` (the issue's vocabulary).
OBJECTIVE_ALIASES = {"flash": "flash_bytes", "ram": "ram_bytes", "latency": "latency_ms"}
#: Names accepted in constraints and reference values, with the factor to the metric's unit.
UNIT_NAMES: dict[str, tuple[str, float]] = {
    **{name: (name, 1.0) for name in METRICS},
    "flash_kb": ("flash_bytes", 1024.0),
    "ram_kb": ("ram_bytes", 1024.0),
}
_NOT_SELECTABLE = ("test_accuracy", "test_accuracy_int8", "test_accuracy_float")
_CONSTRAINT = re.compile(
    r"^\s*([a-z_]+)(?:@([A-Za-z0-9._-]+))?\s*(<=|>=|<|>)\s*([-+0-9.eE_]+)\s*$"
)


@dataclass(frozen=True)
class Objective:
    """One objective: `name` is its metric name (``latency_ms@qemu-m4``)."""

    name: str
    metric: str
    board: str | None
    sense: str
    unit: str
    reference: float
    ideal: float

    def told(self, value: float) -> float:
        """The normalised, minimised value the optimizer is told."""
        return (value - self.ideal) / (self.reference - self.ideal)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Constraint:
    """``metric[@board] op limit`` on measured values; `kind` is 'board' (the board's own flash
    or RAM, always present) or 'user'."""

    name: str
    metric: str
    board: str | None
    op: str  # "<=" or ">="
    limit: float
    unit: str
    kind: str

    @property
    def key(self) -> str:
        """The metric key the constraint reads (``latency_ms@qemu-m4``)."""
        return self.metric if self.board is None else f"{self.metric}@{self.board}"

    def told(self, value: float) -> float:
        """Feasible where <= 0 (the optimizer's convention)."""
        return value / self.limit - 1.0 if self.op == "<=" else 1.0 - value / self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key}


def metric_key(metric: str, board: str | None) -> str:
    return metric if board is None else f"{metric}@{board}"


def _split(text: str, where: str) -> tuple[str, str | None]:
    name, _, board = text.partition("@")
    return name.strip(), (board.strip() or None) if board else None


def _check_board(board: str | None, boards: Sequence[str], where: str) -> None:
    if board is not None and board not in boards:
        raise SearchConfigError(
            f"{where}: board {board!r} is not one of the search's boards "
            f"({', '.join(boards)}); add it to search.boards or fix the name"
        )


def _expand(metric: Metric, board: str | None, boards: Sequence[str]) -> list[str | None]:
    """A per-board metric without @board applies to every board; others have no board."""
    if not metric.per_board:
        return [None]
    return [board] if board is not None else list(boards)


def parse_objectives(
    names: Any, boards: Sequence[str], references: Mapping[str, float]
) -> list[Objective]:
    """`search.objectives` -> objectives (per-board metrics without @board: one per board)."""
    where = "search.objectives"
    allowed = ", ".join([*METRICS, *OBJECTIVE_ALIASES])
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SearchConfigError(
            f"{where} must be a non-empty list of names, e.g. [\"accuracy\", \"flash\", "
            f"\"latency\"]; each one of {allowed}, optionally with @BOARD"
        )
    out: list[Objective] = []
    for text in names:
        name, board = _split(text, where)
        if name in _NOT_SELECTABLE:
            raise SearchConfigError(
                f"{where}: {text!r} cannot be an objective: test accuracy is recorded and "
                "reported, never used to select; use \"accuracy\" (validation accuracy)"
            )
        metric = METRICS.get(OBJECTIVE_ALIASES.get(name, name))
        if metric is None:
            raise SearchConfigError(f"{where}: unknown objective {text!r}; allowed: {allowed}")
        if board is not None and not metric.per_board:
            raise SearchConfigError(
                f"{where}: {text!r}: {metric.name} does not depend on the board; drop @{board}"
            )
        _check_board(board, boards, where)
        for b in _expand(metric, board, boards):
            key = metric_key(metric.name, b)
            if any(o.name == key for o in out):
                raise SearchConfigError(f"{where}: {key} is listed twice")
            ref = references.get(key)
            if ref is None:
                raise SearchConfigError(
                    f"{where}: objective {key} needs a reference value (the worst value worth "
                    f"anything, for the hypervolume): set search.reference.{metric.name} "
                    f"(or \"{key}\") or give a constraint such as \"{metric.name} <= ...\""
                )
            if not (ref - metric.ideal) * (1 if metric.sense == "min" else -1) > 0:
                raise SearchConfigError(
                    f"search.reference for {key} = {ref}: must be worse than the ideal "
                    f"{metric.ideal} ({'above' if metric.sense == 'min' else 'below'} it)"
                )
            out.append(Objective(key, metric.name, b, metric.sense, metric.unit, ref,
                                 metric.ideal))
    return out


def parse_constraints(texts: Any, boards: Sequence[str]) -> list[Constraint]:
    """`search.constraints` (strings such as ``"latency_ms <= 50"``) -> user constraints."""
    where = "search.constraints"
    allowed = ", ".join(UNIT_NAMES)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise SearchConfigError(
            f"{where} must be a list of strings such as \"latency_ms <= 50\" or "
            f"\"ram_kb@qemu-m0 <= 128\"; metrics: {allowed}"
        )
    out: list[Constraint] = []
    for text in texts:
        m = _CONSTRAINT.match(text)
        if m is None:
            raise SearchConfigError(
                f"{where}: cannot read {text!r}; write METRIC[@BOARD] <= NUMBER (or >=), "
                f"METRIC one of {allowed}"
            )
        name, board, op, number = m.groups()
        if name in _NOT_SELECTABLE:
            raise SearchConfigError(
                f"{where}: {text!r}: test accuracy is never used to select; constrain "
                "\"accuracy\" (validation accuracy) instead"
            )
        if name not in UNIT_NAMES:
            hint = " (say flash_kb or flash_bytes)" if name in ("flash", "ram") else ""
            raise SearchConfigError(
                f"{where}: unknown metric {name!r} in {text!r}{hint}; allowed: {allowed}"
            )
        try:
            limit = float(number)
        except ValueError:
            raise SearchConfigError(f"{where}: {number!r} in {text!r} is not a number") from None
        if not (math.isfinite(limit) and limit > 0):
            raise SearchConfigError(f"{where}: the limit in {text!r} must be a number above 0")
        metric_name, factor = UNIT_NAMES[name]
        metric = METRICS[metric_name]
        if board is not None and not metric.per_board:
            raise SearchConfigError(
                f"{where}: {text!r}: {metric.name} does not depend on the board; drop @{board}"
            )
        _check_board(board, boards, where)
        op = {"<": "<=", ">": ">="}.get(op, op)
        for b in _expand(metric, board, boards):
            label = f"{metric_key(name, b)} {op} {number}"
            out.append(Constraint(label, metric.name, b, op, limit * factor, metric.unit, "user"))
    return out


def board_constraints(boards: Sequence[tuple[str, int, int]]) -> list[Constraint]:
    """Every board's own flash and RAM, always: (name, flash_bytes, ram_bytes) per board."""
    out = []
    for name, flash, ram in boards:
        out.append(Constraint(f"flash_bytes@{name} <= {flash}", "flash_bytes", name, "<=",
                              float(flash), "B", "board"))
        out.append(Constraint(f"ram_bytes@{name} <= {ram}", "ram_bytes", name, "<=",
                              float(ram), "B", "board"))
    return out


def parse_references(
    table: Any, boards: Sequence[str], defaults: Mapping[str, float]
) -> dict[str, float]:
    """`search.reference` (metric[@board] = value, kb names allowed) over `defaults`."""
    where = "search.reference"
    refs = dict(defaults)
    if table is None:
        return refs
    if not isinstance(table, Mapping):
        raise SearchConfigError(f"{where} must be a table such as [search.reference]")
    for text, value in table.items():
        name, board = _split(text, where)
        if name not in UNIT_NAMES:
            raise SearchConfigError(
                f"{where}.{text}: unknown metric; allowed: {', '.join(UNIT_NAMES)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SearchConfigError(f"{where}.{text} = {value!r}: expected a number")
        metric_name, factor = UNIT_NAMES[name]
        metric = METRICS[metric_name]
        _check_board(board, boards, f"{where}.{text}")
        for b in _expand(metric, board, boards):
            refs[metric_key(metric_name, b)] = float(value) * factor
    return refs


def metric_values(
    record: Mapping[str, Any] | None,
    reports: Mapping[str, Mapping[str, Any]],
    needs: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, float]:
    """Every metric a trial yielded, in natural units.

    `needs` (board -> {"flash_bytes"/"ram_bytes": bytes}) are what a model that did not fit
    was measured to need (the linker's figure, or the weights/arena lower bound)."""
    values: dict[str, float] = {}
    if record:
        for key, name in (("val_accuracy_int8", "accuracy"),
                          ("test_accuracy_int8", "test_accuracy")):
            if isinstance(record.get(key), int | float):
                values[name] = float(record[key])
    first = next(iter(reports.values()), None)
    for name in ("macs", "params"):
        source = first if first is not None else record
        if source is not None and isinstance(source.get(name), int | float):
            values[name] = float(source[name])
    for board, report in reports.items():
        for name in ("flash_bytes", "ram_bytes", "latency_ms"):
            if isinstance(report.get(name), int | float):
                values[f"{name}@{board}"] = float(report[name])
    for board, need in (needs or {}).items():
        for name, nbytes in need.items():
            values.setdefault(f"{name}@{board}", float(nbytes))
    return values


@dataclass
class Verdict:
    """What one finished trial becomes: the observation to tell and the values to store."""

    feasible: bool
    objectives: dict[str, float] | None  # natural units, None when nothing was measured
    constraints: dict[str, float] | None  # measured metric value per constraint name
    told_objectives: list[float] | None  # None: tell a failure
    told_constraints: list[float]
    imputed: list[str]  # names whose told value is a stand-in, not a measurement


def judge(
    values: Mapping[str, float],
    objectives: Sequence[Objective],
    constraints: Sequence[Constraint],
    *,
    complete: bool,
    worst_objectives: Sequence[float] | None = None,
    worst_constraints: Sequence[float] | None = None,
) -> Verdict:
    """Turn a trial's metric values into a verdict.

    `complete`: every board was measured (a normal evaluation). Otherwise (a model that did
    not fit) the trial is told as infeasible only if a constraint it violates is known; its
    unknown told values are imputed as at least as bad as the worst seen (`worst_*`, told
    scale; objectives at least the reference point 1.0) and listed in `imputed`. Without a
    known violated constraint, or with any non-finite value, it is told as a failure.
    """
    obj_values = {o.name: values[o.name] for o in objectives if o.name in values}
    con_values = {c.name: values[c.key] for c in constraints if c.key in values}
    finite = all(math.isfinite(v) for v in (*obj_values.values(), *con_values.values()))
    if not finite:
        return Verdict(False, obj_values or None, con_values or None, None, [], [])
    told_con = {c.name: c.told(con_values[c.name]) for c in constraints if c.name in con_values}
    if complete:
        missing = [o.name for o in objectives if o.name not in obj_values]
        missing += [c.name for c in constraints if c.name not in con_values]
        if missing:
            return Verdict(False, obj_values or None, con_values or None, None, [], missing)
        feasible = all(v <= 0 for v in told_con.values())
        return Verdict(
            feasible, obj_values, con_values,
            [o.told(obj_values[o.name]) for o in objectives],
            [told_con[c.name] for c in constraints], [],
        )  # fmt: skip
    if not any(v > 0 for v in told_con.values()):
        return Verdict(False, obj_values or None, con_values or None, None, [], [])
    imputed: list[str] = []
    told_o: list[float] = []
    for i, o in enumerate(objectives):
        if o.name in obj_values:
            told_o.append(o.told(obj_values[o.name]))
        else:
            worst = worst_objectives[i] if worst_objectives else 1.0
            told_o.append(max(1.0, worst))
            imputed.append(o.name)
    told_c: list[float] = []
    for i, c in enumerate(constraints):
        if c.name in told_con:
            told_c.append(told_con[c.name])
        else:
            worst = worst_constraints[i] if worst_constraints else 0.0
            told_c.append(max(0.0, worst))
            imputed.append(c.name)
    return Verdict(False, obj_values or None, con_values or None, told_o, told_c, imputed)


__all__ = [
    "METRICS",
    "Constraint",
    "Metric",
    "Objective",
    "SearchConfigError",
    "Verdict",
    "board_constraints",
    "judge",
    "metric_values",
    "parse_constraints",
    "parse_objectives",
    "parse_references",
]
