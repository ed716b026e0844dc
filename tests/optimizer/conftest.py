"""Shared fixtures: one torch thread (exact repeats, shared machine) and fast algorithm settings."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

torch.set_num_threads(1)

#: Settings that keep each algorithm's proposal well under a second in tests; every initial
#: design has 4 points except NSGA-II's first population of 6.
FAST: dict[str, dict[str, Any]] = {
    "ars-mobo": {
        "policies": 2,
        "directions": 4,
        "top_directions": 2,
        "horizon": 4,
        "iterations": 4,
        "mc_samples": 16,
        "initial_points": 4,
    },
    "qlognehvi": {
        "num_restarts": 2,
        "raw_samples": 32,
        "mc_samples": 16,
        "maxiter": 20,
        "initial_points": 4,
    },
    "qnparego": {
        "num_restarts": 2,
        "raw_samples": 32,
        "mc_samples": 16,
        "maxiter": 20,
        "initial_points": 4,
    },
    "nsga2": {"population_size": 6},
    "sobol": {},
}


@pytest.fixture(autouse=True)
def _quiet_numerics() -> None:
    warnings.filterwarnings("ignore", module=r"(botorch|gpytorch|linear_operator)(\..*)?")
