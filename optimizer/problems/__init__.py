"""Benchmark problems: botorch's test functions and a TinyML-like analytical surrogate."""

from __future__ import annotations

from collections.abc import Callable

from optimizer.core import OptimizerError
from optimizer.problems.base import Problem
from optimizer.problems.synthetic import branin_currin, c2_dtlz2, disc_brake, dtlz2
from optimizer.problems.tinyml import TinyMLProblem

PROBLEMS: dict[str, Callable[[], Problem]] = {
    "branin-currin": branin_currin,
    "dtlz2": dtlz2,
    "c2-dtlz2": c2_dtlz2,
    "disc-brake": disc_brake,
    "tinyml": TinyMLProblem,
}


def make_problem(name: str) -> Problem:
    """The problem registered under `name`."""
    try:
        return PROBLEMS[name]()
    except KeyError:
        raise OptimizerError(
            f"unknown problem {name!r}; choose one of {', '.join(PROBLEMS)}"
        ) from None


__all__ = ["PROBLEMS", "Problem", "make_problem"]
