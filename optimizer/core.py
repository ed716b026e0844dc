"""The ask/tell protocol every search algorithm speaks, on vectors only.

Conventions, fixed here once for the whole package:

- Inputs are points of the unit cube ``[0, 1]^d``; the search space (``optimizer/space.py``)
  maps them to hyperparameters. Algorithms never see hyperparameter names.
- Objectives are **minimised**.
- Constraint values are feasible where ``<= 0`` (the slack convention negated: a constraint
  ``ROM <= 1000 KB`` is told as ``ROM / 1000 KB - 1``).
- An evaluation that did not produce numbers (training diverged, the model did not fit the
  board, the target crashed) is told as a *failure*: no objective values, never a fake one.
  Every algorithm handles failures itself (see each algorithm's docstring).

An optimizer is deterministic for a given seed: all randomness comes from one numpy
`Generator` per instance, and torch work is seeded from it per call. Its state (observations,
outstanding proposals, generator state, settings) is saved as JSON, so a search resumes
exactly where it stopped, even in another process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import qmc

from hil.errors import HilError

#: Version of the saved-state layout; bumped when it changes incompatibly.
STATE_VERSION = 1


class OptimizerError(HilError):
    """Bad input to an optimizer (wrong dimensions, non-finite values, unknown names, bad state)."""


@dataclass(frozen=True)
class ProblemSpec:
    """What an algorithm needs to know about a problem: sizes, and optionally a reference point.

    `ref_point` (objective space, minimisation) bounds the region whose hypervolume counts; it is
    used by hypervolume-based algorithms and inferred from the data when not given.

    What the GP methods may exploit (`optimizer.models`), all optional: `discrete` gives per
    input coordinate the bin edges ``(0, ..., 1)`` of an integer or categorical parameter (every
    point of a bin is the same configuration), ``()`` for a continuous one; `positive_objectives`
    are the objectives that are strictly positive resources (flash, RAM, latency, MACs);
    `affine_constraints` gives per constraint ``(j, a, b)`` when its value is always
    ``a * objective_j + b`` (a budget on an objective), else None.
    """

    dim: int
    num_objectives: int
    num_constraints: int = 0
    ref_point: tuple[float, ...] | None = None
    discrete: tuple[tuple[float, ...], ...] = ()
    positive_objectives: tuple[int, ...] = ()
    affine_constraints: tuple[tuple[int, float, float] | None, ...] = ()

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise OptimizerError(f"dim must be >= 1, got {self.dim}")
        if self.num_objectives < 1:
            raise OptimizerError(f"num_objectives must be >= 1, got {self.num_objectives}")
        if self.num_constraints < 0:
            raise OptimizerError(f"num_constraints must be >= 0, got {self.num_constraints}")
        if self.ref_point is not None:
            ref = tuple(float(v) for v in self.ref_point)
            if len(ref) != self.num_objectives or not all(math.isfinite(v) for v in ref):
                raise OptimizerError(
                    f"ref_point must hold {self.num_objectives} finite values, got {self.ref_point}"
                )
            object.__setattr__(self, "ref_point", ref)
        self._check_structure()

    def _check_structure(self) -> None:
        discrete = tuple(tuple(float(v) for v in e) for e in self.discrete)
        if discrete and len(discrete) != self.dim:
            raise OptimizerError(f"discrete must hold {self.dim} entries (one per input)")
        for i, e in enumerate(discrete):
            if e and (len(e) < 2 or e[0] != 0 or e[-1] != 1 or list(e) != sorted(set(e))):
                raise OptimizerError(
                    f"discrete[{i}] must be () or increasing bin edges from 0 to 1, got {e}"
                )
        positive = tuple(int(j) for j in self.positive_objectives)
        if not all(0 <= j < self.num_objectives for j in positive):
            raise OptimizerError(f"positive_objectives {positive} name an unknown objective")
        affine = tuple(None if r is None else (int(r[0]), float(r[1]), float(r[2]))
                       for r in self.affine_constraints)  # fmt: skip
        if affine and len(affine) != self.num_constraints:
            raise OptimizerError(f"affine_constraints must hold {self.num_constraints} entries")
        for r in affine:
            if r is not None and not (0 <= r[0] < self.num_objectives and r[1] != 0):
                raise OptimizerError(f"affine constraint {r}: unknown objective or zero slope")
        object.__setattr__(self, "discrete", discrete)
        object.__setattr__(self, "positive_objectives", positive)
        object.__setattr__(self, "affine_constraints", affine)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemSpec:
        ref = data.get("ref_point")
        return cls(
            dim=int(data["dim"]),
            num_objectives=int(data["num_objectives"]),
            num_constraints=int(data.get("num_constraints", 0)),
            ref_point=None if ref is None else tuple(ref),
            discrete=tuple(tuple(e) for e in data.get("discrete", ())),
            positive_objectives=tuple(data.get("positive_objectives", ())),
            affine_constraints=tuple(
                None if r is None else tuple(r) for r in data.get("affine_constraints", ())
            ),
        )


@dataclass(frozen=True)
class Observation:
    """The outcome of evaluating one point: objective and constraint values, or a failure."""

    x: tuple[float, ...]
    objectives: tuple[float, ...] | None
    constraints: tuple[float, ...] = ()
    error: str | None = None

    @classmethod
    def success(
        cls,
        x: Sequence[float],
        objectives: Sequence[float],
        constraints: Sequence[float] = (),
    ) -> Observation:
        return cls(_floats(x), _floats(objectives), _floats(constraints))

    @classmethod
    def failure(cls, x: Sequence[float], error: str = "evaluation failed") -> Observation:
        return cls(_floats(x), None, (), error or "evaluation failed")

    @property
    def failed(self) -> bool:
        return self.objectives is None

    @property
    def feasible(self) -> bool:
        """Evaluated successfully and every constraint value is <= 0."""
        return not self.failed and all(c <= 0.0 for c in self.constraints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": list(self.x),
            "objectives": None if self.objectives is None else list(self.objectives),
            "constraints": list(self.constraints),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        objectives = data.get("objectives")
        return cls(
            _floats(data["x"]),
            None if objectives is None else _floats(objectives),
            _floats(data.get("constraints", ())),
            data.get("error"),
        )


@dataclass(frozen=True)
class Proposal:
    """A point an optimizer wants evaluated; turn it into an `Observation` with the helpers."""

    x: tuple[float, ...]

    def succeeded(
        self, objectives: Sequence[float], constraints: Sequence[float] = ()
    ) -> Observation:
        return Observation.success(self.x, objectives, constraints)

    def failed(self, error: str = "evaluation failed") -> Observation:
        return Observation.failure(self.x, error)


@dataclass(frozen=True)
class Settings:
    """Base of each algorithm's settings; a frozen dataclass so it saves and compares exactly."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Optimizer(ABC):
    """Ask/tell optimizer over the unit cube. Subclasses implement `_propose`.

    `ask(q)` returns q proposals (q >= 1, for parallel evaluators); they stay *pending* until told.
    Model-based algorithms take pending points into account so a batch is diverse. `tell` accepts
    observations of pending points or of any other point (e.g. results from an earlier study).
    """

    #: Registry name (`ars-mobo`, `qlognehvi`, ...), used by the benchmark and saved states.
    name: ClassVar[str]
    settings_class: ClassVar[type[Settings]]

    def __init__(self, spec: ProblemSpec, seed: int = 0, settings: Settings | None = None) -> None:
        settings = settings if settings is not None else self.settings_class()
        if not isinstance(settings, self.settings_class):
            raise OptimizerError(
                f"{self.name} takes {self.settings_class.__name__}, got {type(settings).__name__}"
            )
        self.spec = spec
        self.seed = int(seed)
        self.settings = settings
        self.observations: list[Observation] = []
        self.pending: list[tuple[float, ...]] = []
        self.num_asked = 0
        self._rng = np.random.default_rng(self.seed)

    # -- protocol -------------------------------------------------------------------------

    def ask(self, q: int = 1) -> list[Proposal]:
        """Propose `q` points to evaluate next."""
        if int(q) != q or q < 1:
            raise OptimizerError(f"ask(q) needs an integer q >= 1, got {q!r}")
        with single_thread_torch():
            xs = np.asarray(self._propose(int(q)), dtype=float).reshape(int(q), self.spec.dim)
        xs = np.clip(xs, 0.0, 1.0)
        proposals = [Proposal(_floats(row)) for row in xs]
        self.pending.extend(p.x for p in proposals)
        self.num_asked += len(proposals)
        return proposals

    def tell(self, observations: Observation | Iterable[Observation]) -> None:
        """Record evaluated points (successes and failures); they leave the pending list."""
        if isinstance(observations, Observation):
            observations = [observations]
        checked = [self._check(obs) for obs in observations]
        for obs in checked:
            if obs.x in self.pending:
                self.pending.remove(obs.x)
            self.observations.append(obs)

    # -- subclass hooks -------------------------------------------------------------------

    @abstractmethod
    def _propose(self, q: int) -> np.ndarray:
        """Return a (q, d) array of new points in the unit cube."""

    def _extra_state(self) -> dict[str, Any]:
        """Algorithm-specific state beyond observations, pending points and the generator."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Inverse of `_extra_state`."""

    # -- helpers for subclasses -----------------------------------------------------------

    def draw_seed(self) -> int:
        """Draw a seed (for torch, k-means, ...) from this optimizer's generator."""
        return int(self._rng.integers(0, 2**31 - 1))

    @contextlib.contextmanager
    def seeded_torch(self) -> Iterator[None]:
        """Run torch code with a seed drawn from this optimizer's generator; restore afterwards."""
        with torch.random.fork_rng():
            torch.manual_seed(self.draw_seed())
            yield

    def design_points(self, size: int, q: int) -> np.ndarray:
        """The next of up to `q` points of the seed's Latin-hypercube initial design of `size`
        points; none once `size` points were told or are pending (prior data counts)."""
        known = len(self.observations) + len(self.pending)
        count = min(q, max(0, size - known))
        design = qmc.LatinHypercube(d=self.spec.dim, rng=np.random.default_rng(self.seed))
        start = min(self.num_asked, size - count)
        return design.random(size)[start : start + count]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All observations as arrays: X (n, d), objectives and constraints of the successful
        ones (n_ok, m) and (n_ok, c), and a boolean `ok` mask over X."""
        d, m, c = self.spec.dim, self.spec.num_objectives, self.spec.num_constraints
        x = np.array([o.x for o in self.observations], dtype=float).reshape(-1, d)
        ok = np.array([not o.failed for o in self.observations], dtype=bool)
        y = np.array([o.objectives for o in self.observations if not o.failed], dtype=float)
        con = np.array([o.constraints for o in self.observations if not o.failed], dtype=float)
        n_ok = int(ok.sum())
        return x, y.reshape(n_ok, m), con.reshape(n_ok, c), ok

    # -- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this search exactly, as JSON-compatible data."""
        return {
            "version": STATE_VERSION,
            "algorithm": self.name,
            "spec": self.spec.to_dict(),
            "seed": self.seed,
            "settings": self.settings.to_dict(),
            "rng": _jsonable(self._rng.bit_generator.state),
            "num_asked": self.num_asked,
            "observations": [o.to_dict() for o in self.observations],
            "pending": [list(x) for x in self.pending],
            "extra": self._extra_state(),
        }

    def save(self, path: str | Path) -> None:
        """Write the state as JSON (atomically: a crash never leaves half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.state_dict(), indent=1))
        tmp.replace(path)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer of this class from `state_dict()` output."""
        if state.get("version") != STATE_VERSION:
            raise OptimizerError(
                f"saved state has version {state.get('version')!r}, this code reads "
                f"{STATE_VERSION}: re-run the search or use the matching release"
            )
        if state.get("algorithm") != cls.name:
            raise OptimizerError(
                f"saved state is for {state.get('algorithm')!r}, not {cls.name!r}: "
                "load it with optimizer.algorithms.load_optimizer"
            )
        try:
            settings = cls.settings_class(**state["settings"])
        except TypeError as exc:
            raise OptimizerError(f"saved settings do not fit {cls.name}: {exc}") from exc
        opt = cls(ProblemSpec.from_dict(state["spec"]), seed=state["seed"], settings=settings)
        opt._rng.bit_generator.state = state["rng"]
        opt.num_asked = int(state["num_asked"])
        opt.observations = [Observation.from_dict(o) for o in state["observations"]]
        opt.pending = [_floats(x) for x in state["pending"]]
        opt._load_extra_state(state.get("extra", {}))
        return opt

    # -- validation -----------------------------------------------------------------------

    def _check(self, obs: Observation) -> Observation:
        if not isinstance(obs, Observation):
            raise OptimizerError(f"tell() takes Observation objects, got {type(obs).__name__}")
        spec = self.spec
        if len(obs.x) != spec.dim:
            raise OptimizerError(f"observation x has {len(obs.x)} values, problem has {spec.dim}")
        if not all(math.isfinite(v) and -1e-9 <= v <= 1 + 1e-9 for v in obs.x):
            raise OptimizerError(f"observation x must lie in the unit cube, got {obs.x}")
        if obs.failed:
            return obs
        if len(obs.objectives) != spec.num_objectives:  # type: ignore[arg-type]
            raise OptimizerError(
                f"observation has {len(obs.objectives)} objectives, "  # type: ignore[arg-type]
                f"problem has {spec.num_objectives}"
            )
        if len(obs.constraints) != spec.num_constraints:
            raise OptimizerError(
                f"observation has {len(obs.constraints)} constraint values, "
                f"problem has {spec.num_constraints}"
            )
        values = (*obs.objectives, *obs.constraints)  # type: ignore[misc]
        if not all(math.isfinite(v) for v in values):
            raise OptimizerError(
                f"observation at {obs.x} has non-finite values {values}: tell a failed "
                "evaluation with Observation.failure(x, reason) instead"
            )
        return obs


@contextlib.contextmanager
def single_thread_torch() -> Iterator[None]:
    """Keep torch on one thread: results repeat exactly, and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _floats(values: Iterable[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _jsonable(value: Any) -> Any:
    """numpy generator states hold Python ints only, but be safe about numpy scalars."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


__all__ = [
    "Observation",
    "Optimizer",
    "OptimizerError",
    "ProblemSpec",
    "Proposal",
    "Settings",
    "single_thread_torch",
]
