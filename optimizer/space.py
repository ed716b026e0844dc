"""Declarative search spaces: typed hyperparameters mapped to and from the unit cube.

The optimizer's algorithms see only vectors in [0, 1]^dim; everything that knows what a
hyperparameter *means* (its type, range, log scale, when it matters) lives here, so a new
search space is a list of declarations rather than new code in every algorithm.

Encoding: one coordinate per parameter. Floats map linearly (or linearly in log space);
integers, categoricals and booleans split [0, 1] into equal bins, one per value, and encode a
value as the centre of its bin, so `decode(encode(c)) == c`. A parameter whose condition does
not hold is *inactive*: it decodes to its default and encodes as its default, so the optimizer
sees a well-defined point but the value has no effect.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hil.errors import HilError


class SpaceError(HilError):
    """A configuration does not fit the search space: unknown name, wrong type, out of range."""


@dataclass(frozen=True)
class Param(ABC):
    """Common part of every parameter. `when` maps another parameter's name to the values for
    which this one is active (e.g. ``{"pruning.mode": ("structured", "unstructured")}``)."""

    name: str
    default: Any
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    help: str = ""

    @abstractmethod
    def check(self, value: Any) -> Any:
        """Return `value` in canonical form or raise SpaceError saying what is wrong."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Position of a valid value in [0, 1]."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at position `u` in [0, 1]."""

    @abstractmethod
    def describe(self) -> str:
        """Type and range in words, for error messages and docs."""

    def _fail(self, value: Any, expected: str) -> SpaceError:
        return SpaceError(f"{self.name} = {value!r}: expected {expected}")

    def bin_edges(self) -> tuple[float, ...]:
        """Edges ``(0, ..., 1)`` of the bins a discrete parameter splits [0, 1] into (every
        point of a bin decodes to the same value); ``()`` for a continuous one."""
        return ()


def _bins(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


@dataclass(frozen=True)
class Float(Param):
    """A real number in [low, high]; `log=True` searches its logarithm (learning rates)."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise SpaceError(f"{self.name}: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"{self.name}: a log-scale range must be positive, got {self.low}")
        self.check(self.default)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise self._fail(value, f"a number in [{self.low}, {self.high}]")
        v = float(value)
        if not (self.low <= v <= self.high):
            raise self._fail(value, f"a number in [{self.low}, {self.high}]")
        return v

    def _t(self, v: float) -> float:
        return math.log(v) if self.log else v

    def to_unit(self, value: Any) -> float:
        lo, hi = self._t(self.low), self._t(self.high)
        return (self._t(self.check(value)) - lo) / (hi - lo)

    def from_unit(self, u: float) -> float:
        lo, hi = self._t(self.low), self._t(self.high)
        t = lo + u * (hi - lo)
        v = math.exp(t) if self.log else t
        return min(max(v, self.low), self.high)

    def describe(self) -> str:
        return f"float in [{self.low}, {self.high}]" + (" (log scale)" if self.log else "")


@dataclass(frozen=True)
class Int(Param):
    """An integer in [low, high]; with `log=True` the bins are equal in log space, so small
    values (1, 2, 3 epochs) get as much of the cube as large ones."""

    low: int = 0
    high: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise SpaceError(f"{self.name}: low {self.low} must not exceed high {self.high}")
        if self.log and self.low <= 0:
            raise SpaceError(f"{self.name}: a log-scale range must be positive, got {self.low}")
        self.check(self.default)

    def check(self, value: Any) -> int:
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
        if not ok or not (self.low <= value <= self.high):
            raise self._fail(value, f"an integer in [{self.low}, {self.high}]")
        return int(value)

    def _edges(self) -> tuple[float, float]:
        if self.log:
            return math.log(self.low), math.log(self.high + 1)
        return float(self.low), float(self.high + 1)

    def to_unit(self, value: Any) -> float:
        v = self.check(value)
        lo, hi = self._edges()
        centre = (math.log(v) + math.log(v + 1)) / 2 if self.log else v + 0.5
        return (centre - lo) / (hi - lo)

    def bin_edges(self) -> tuple[float, ...]:
        lo, hi = self._edges()
        inner = [
            ((math.log(v) if self.log else v) - lo) / (hi - lo)
            for v in range(self.low + 1, self.high + 1)
        ]
        return (0.0, *inner, 1.0)

    def from_unit(self, u: float) -> int:
        lo, hi = self._edges()
        t = lo + u * (hi - lo)
        v = math.floor(math.exp(t) if self.log else t)
        return min(max(v, self.low), self.high)

    def describe(self) -> str:
        return f"integer in [{self.low}, {self.high}]" + (" (log scale)" if self.log else "")


@dataclass(frozen=True)
class Categorical(Param):
    """One of a fixed tuple of choices (strings, numbers)."""

    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise SpaceError(f"{self.name}: a categorical parameter needs at least one choice")
        self.check(self.default)

    def check(self, value: Any) -> Any:
        for c in self.choices:
            if type(c) is type(value) and c == value:
                return c
        raise self._fail(value, "one of " + ", ".join(repr(c) for c in self.choices))

    def to_unit(self, value: Any) -> float:
        i = self.choices.index(self.check(value))
        return (i + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Any:
        return self.choices[_bins(u, len(self.choices))]

    def bin_edges(self) -> tuple[float, ...]:
        n = len(self.choices)
        return tuple(k / n for k in range(n + 1))

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class Bool(Param):
    """On or off (encoded as two bins: [0, 0.5) is False)."""

    def __post_init__(self) -> None:
        self.check(self.default)

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise self._fail(value, "true or false")
        return bool(value)

    def to_unit(self, value: Any) -> float:
        return 0.75 if self.check(value) else 0.25

    def from_unit(self, u: float) -> bool:
        return u >= 0.5

    def bin_edges(self) -> tuple[float, ...]:
        return (0.0, 0.5, 1.0)

    def describe(self) -> str:
        return "true or false"


class Space:
    """An ordered set of parameters; coordinate i of a unit-cube vector is parameter i."""

    def __init__(self, params: Iterable[Param]) -> None:
        self.params: tuple[Param, ...] = tuple(params)
        self._by_name = {p.name: p for p in self.params}
        if len(self._by_name) != len(self.params):
            raise SpaceError("a search space lists the same parameter name twice")
        for p in self.params:
            for other, values in p.when.items():
                if other not in self._by_name:
                    raise SpaceError(f"{p.name}: condition refers to unknown parameter {other!r}")
                if self.params.index(self._by_name[other]) > self.params.index(p):
                    raise SpaceError(f"{p.name}: condition on {other!r}, declared after it")
                for v in values:
                    self._by_name[other].check(v)

    @property
    def dim(self) -> int:
        """Number of unit-cube coordinates."""
        return len(self.params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise self._unknown(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def _unknown(self, name: str) -> SpaceError:
        return SpaceError(f"unknown hyperparameter {name!r}; known: {', '.join(self.names)}")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether `name` matters for `config` (all of its conditions hold)."""
        return all(config[other] in values for other, values in self[name].when.items())

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Check a (partial) configuration and fill in defaults; returns a complete one.

        Raises SpaceError for an unknown name, a wrong type or a value out of range.
        """
        for name in config:
            if name not in self._by_name:
                raise self._unknown(name)
        return {p.name: p.check(config.get(p.name, p.default)) for p in self.params}

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Configuration -> point in [0, 1]^dim (inactive parameters at their default)."""
        full = self.validate(config)
        x = np.empty(self.dim)
        for i, p in enumerate(self.params):
            value = full[p.name] if self.is_active(p.name, full) else p.default
            x[i] = p.to_unit(value)
        return x

    def decode(self, x: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Point in [0, 1]^dim -> complete configuration (inactive parameters at their default)."""
        arr = np.asarray(x, dtype=float)
        if arr.shape != (self.dim,):
            raise SpaceError(f"expected a vector of length {self.dim}, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise SpaceError("a unit-cube vector must have every coordinate in [0, 1]")
        config: dict[str, Any] = {}
        for p, u in zip(self.params, arr, strict=True):
            config[p.name] = p.from_unit(float(u))
            if not self.is_active(p.name, config):
                config[p.name] = p.default
        return config

    def bin_edges(self) -> tuple[tuple[float, ...], ...]:
        """Per coordinate, `Param.bin_edges` (what `ProblemSpec.discrete` takes): the GP methods
        round discrete coordinates to their bin centres. Conditions are not expressed: an
        inactive parameter's coordinate still looks meaningful to them."""
        return tuple(p.bin_edges() for p in self.params)

    def describe(self) -> str:
        """One line per parameter: name, type and range, default, condition, help."""
        lines = []
        for p in self.params:
            cond = "".join(f"; only when {k} in {list(v)}" for k, v in p.when.items())
            lines.append(f"{p.name}: {p.describe()}, default {p.default!r}{cond}. {p.help}")
        return "\n".join(lines)
