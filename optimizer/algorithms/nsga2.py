"""NSGA-II (Deb et al. 2002) in ask/tell form, with constraint domination and failures.

Generations are (mu + lambda) over *everything evaluated so far*: the parents of each new batch
of offspring are the best `population_size` observations by constrained non-dominated rank and
crowding distance. That is the elitist survival of NSGA-II, and it makes the population a
function of the observations, so asynchronous and batched evaluation need no special cases.

Ranking (Deb's constraint domination): feasible points by non-dominated front, then infeasible
ones by total constraint violation, then failed evaluations last (the worst rank: they are only
ever parents when nothing else is there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.core import Optimizer, Settings
from optimizer.hypervolume import pareto_mask

#: Children closer than this (max-norm) to an evaluated or pending point are discarded.
DUPLICATE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class NSGA2Settings(Settings):
    population_size: int = 16
    crossover_probability: float = 0.9
    crossover_eta: float = 15.0
    mutation_eta: float = 20.0
    #: Per-variable mutation probability; None means 1/d.
    mutation_probability: float | None = None


def constrained_ranking(
    objectives: np.ndarray, violation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rank (0 best) and crowding distance of each point. `violation` is 0 for feasible points,
    the summed positive constraint values for infeasible ones, and inf for failures."""
    n = len(violation)
    rank = np.zeros(n, dtype=int)
    crowding = np.zeros(n)
    remaining = np.flatnonzero(violation == 0)
    front_no = 0
    while len(remaining):
        front = remaining[pareto_mask(objectives[remaining])]
        # pareto_mask keeps one of exact duplicates; the others belong to the next front.
        rank[front] = front_no
        crowding[front] = _crowding(objectives[front])
        remaining = np.setdiff1d(remaining, front)
        front_no += 1
    infeasible = np.flatnonzero(violation > 0)
    order = np.unique(violation[infeasible], return_inverse=True)[1]
    rank[infeasible] = front_no + order
    return rank, crowding


def _crowding(front: np.ndarray) -> np.ndarray:
    n, m = front.shape
    distance = np.zeros(n)
    if n <= 2:
        distance[:] = np.inf
        return distance
    for j in range(m):
        order = np.argsort(front[:, j], kind="stable")
        span = front[order[-1], j] - front[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (front[order[2:], j] - front[order[:-2], j]) / span
    return distance


class NSGA2(Optimizer):
    name = "nsga2"
    settings_class = NSGA2Settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: list[tuple[float, ...]] = []

    def _propose(self, q: int) -> np.ndarray:
        settings: NSGA2Settings = self.settings  # type: ignore[assignment]
        points = list(self.design_points(settings.population_size, q))
        while len(points) < q:
            if not self._queue:
                self._queue = [tuple(row) for row in self._offspring()]
            points.append(np.asarray(self._queue.pop(0)))
        return np.array(points)

    def _offspring(self) -> np.ndarray:
        """One generation of children of the current best `population_size` observations."""
        settings: NSGA2Settings = self.settings  # type: ignore[assignment]
        d, pop = self.spec.dim, settings.population_size
        if len(self.observations) < 2:
            return self._rng.random((pop, d))
        x = np.array([o.x for o in self.observations])
        rank, crowding = self._ranking()
        survivors = np.lexsort((-crowding, rank))[:pop]
        x, rank, crowding = x[survivors], rank[survivors], crowding[survivors]

        def tournament() -> np.ndarray:
            i, j = self._rng.choice(len(x), size=2, replace=len(x) < 2)
            better = (rank[i], -crowding[i]) <= (rank[j], -crowding[j])
            return x[i] if better else x[j]

        # Like pymoo, drop children that repeat a known point: an evaluation is too expensive
        # to spend twice. Give up after many tries (a collapsed population) and sample instead.
        known = [np.asarray(p) for p in (*[o.x for o in self.observations], *self.pending)]
        children: list[np.ndarray] = []
        for _ in range(50 * pop):
            if len(children) >= pop:
                break
            a, b = self._sbx(tournament(), tournament())
            for child in (self._mutate(a), self._mutate(b)):
                if not any(np.abs(child - p).max() <= DUPLICATE_TOLERANCE for p in known):
                    children.append(child)
                    known.append(child)
        while len(children) < pop:
            children.append(self._rng.random(d))
        return np.array(children[:pop])

    def _ranking(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.spec.num_objectives
        y = np.array([o.objectives if not o.failed else [np.inf] * m for o in self.observations])
        violation = np.array(
            [
                np.inf if o.failed else float(np.sum(np.maximum(o.constraints, 0.0)))
                for o in self.observations
            ]
        )
        return constrained_ranking(y, violation)

    def _sbx(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Simulated binary crossover, bounded to [0, 1] (Deb and Agrawal 1995)."""
        settings: NSGA2Settings = self.settings  # type: ignore[assignment]
        c1, c2 = a.copy(), b.copy()
        if self._rng.random() > settings.crossover_probability:
            return c1, c2
        eta = settings.crossover_eta
        for i in range(len(a)):
            if self._rng.random() > 0.5 or abs(a[i] - b[i]) < 1e-14:
                continue
            lo, hi = min(a[i], b[i]), max(a[i], b[i])
            u = self._rng.random()
            children = []
            for beta in (1 + 2 * lo / (hi - lo), 1 + 2 * (1 - hi) / (hi - lo)):
                alpha = 2 - beta ** -(eta + 1)
                if u <= 1 / alpha:
                    betaq = (u * alpha) ** (1 / (eta + 1))
                else:
                    betaq = (1 / (2 - u * alpha)) ** (1 / (eta + 1))
                children.append(betaq)
            c1[i] = 0.5 * ((lo + hi) - children[0] * (hi - lo))
            c2[i] = 0.5 * ((lo + hi) + children[1] * (hi - lo))
            if self._rng.random() < 0.5:
                c1[i], c2[i] = c2[i], c1[i]
        return np.clip(c1, 0, 1), np.clip(c2, 0, 1)

    def _mutate(self, x: np.ndarray) -> np.ndarray:
        """Polynomial mutation on [0, 1]."""
        settings: NSGA2Settings = self.settings  # type: ignore[assignment]
        prob = settings.mutation_probability or 1.0 / len(x)
        eta = settings.mutation_eta
        y = x.copy()
        for i in range(len(x)):
            if self._rng.random() >= prob:
                continue
            u = self._rng.random()
            if u < 0.5:
                delta = (2 * u + (1 - 2 * u) * (1 - y[i]) ** (eta + 1)) ** (1 / (eta + 1)) - 1
            else:
                delta = 1 - (2 * (1 - u) + 2 * (u - 0.5) * y[i] ** (eta + 1)) ** (1 / (eta + 1))
            y[i] = y[i] + delta
        return np.clip(y, 0, 1)

    def _extra_state(self) -> dict[str, Any]:
        return {"queue": [list(x) for x in self._queue]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._queue = [tuple(float(v) for v in x) for x in state.get("queue", [])]
