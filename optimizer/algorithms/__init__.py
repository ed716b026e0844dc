"""The search algorithms, all speaking `optimizer.core.Optimizer`'s ask/tell protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optimizer.algorithms.ars_mobo import ArsMobo, ArsMoboSettings
from optimizer.algorithms.nsga2 import NSGA2, NSGA2Settings
from optimizer.algorithms.qlognehvi import QLogNEHVI
from optimizer.algorithms.qnparego import QNParEGO
from optimizer.algorithms.sobol import SobolSampler
from optimizer.core import Optimizer, OptimizerError, ProblemSpec

ALGORITHMS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (ArsMobo, QLogNEHVI, QNParEGO, NSGA2, SobolSampler)
}


def make_optimizer(name: str, spec: ProblemSpec, seed: int = 0, **settings: Any) -> Optimizer:
    """An optimizer by registry name; keyword arguments override its default settings."""
    cls = _lookup(name)
    try:
        config = cls.settings_class(**settings)
    except TypeError as exc:
        raise OptimizerError(f"bad settings for {name}: {exc}") from exc
    return cls(spec, seed=seed, settings=config)


def load_optimizer(path: str | Path) -> Optimizer:
    """Resume a search saved with `Optimizer.save`."""
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OptimizerError(f"cannot read optimizer state {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise OptimizerError(f"{path} does not hold an optimizer state")
    return _lookup(str(state.get("algorithm"))).from_state(state)


def _lookup(name: str) -> type[Optimizer]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise OptimizerError(
            f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}"
        ) from None


__all__ = [
    "ALGORITHMS",
    "ArsMoboSettings",
    "NSGA2Settings",
    "load_optimizer",
    "make_optimizer",
]
