"""ARS-MOBOpt (Deutel, Kontes, Mutschler, Teich): multi-objective BO whose acquisition is
maximised by an ensemble of reinforcement-learning policies trained with Augmented Random Search.

Per proposal: fit the GP surrogate (`optimizer.models`); draw ParEGO weights; start L policies
from the k-means centres of the current Pareto set (in input space); train them with ARS on the
Chebyshev-EI reward (`optimizer.ars.reward`), each rollout H steps through the unit cube;
validate each policy with a deterministic rollout and propose the best state any of them
reached. Unlike the paper's description, the reward counts only improvement inside the
hypervolume reference box (`reference_box`, measured in docs/optimizer.md). Batches (q > 1)
are built greedily: each further point gets new weights and sees the earlier ones as pending.
Constraints and failed evaluations enter as GP-modelled constraints. The defaults and the
ablation that chose them are in docs/optimizer.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from botorch.utils.sampling import sample_simplex
from sklearn.cluster import KMeans
from torch import Tensor

from optimizer.algorithms.acquisition import reference_point
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.ars.policy import MlpPolicy
from optimizer.ars.reward import REWARDS, chebyshev_ei_reward
from optimizer.ars.trainer import ArsConfig, train_ensemble
from optimizer.core import OptimizerError, Settings
from optimizer.hypervolume import pareto_mask
from optimizer.models import DTYPE, Surrogate

#: Two proposals closer than this (max-norm in the unit cube) count as the same point.
DUPLICATE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ArsMoboSettings(Settings):
    initial_points: int | None = None
    policies: int = 4  # L
    directions: int = 8  # N
    top_directions: int = 4  # K
    noise: float = 0.05  # nu
    step_size: float = 0.02  # alpha
    horizon: int = 10  # H
    iterations: int = 20  # ARS training steps per proposal
    hidden: int = 16
    max_step: float = 0.1
    mc_samples: int = 64
    reward: str = "log-ei"
    #: Reward only improvement inside the hypervolume reference box (see optimizer.ars.reward).
    reference_box: bool = True

    def __post_init__(self) -> None:
        for name in ("policies", "directions", "top_directions", "horizon", "hidden", "mc_samples"):
            if getattr(self, name) < 1:
                raise OptimizerError(f"ARS-MOBOpt setting {name} must be >= 1")
        if self.iterations < 0:
            raise OptimizerError("ARS-MOBOpt setting iterations must be >= 0")
        if self.top_directions > self.directions:
            raise OptimizerError(
                f"top_directions ({self.top_directions}) cannot exceed directions "
                f"({self.directions})"
            )
        if not (self.noise > 0 and self.step_size > 0 and self.max_step > 0):
            raise OptimizerError("ARS-MOBOpt noise, step_size and max_step must be > 0")
        if self.reward not in REWARDS:
            raise OptimizerError(f"ARS-MOBOpt reward must be one of {', '.join(REWARDS)}")


class ArsMobo(ModelBasedOptimizer):
    name = "ars-mobo"
    settings_class = ArsMoboSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        policy = MlpPolicy(self.spec.dim, s.hidden, s.max_step)
        config = ArsConfig(
            s.directions, s.top_directions, s.noise, s.step_size, s.horizon, s.iterations
        )
        ref = reference_point(surrogate, self.spec.ref_point) if s.reference_box else None
        taken = torch.as_tensor(np.array([o.x for o in self.observations]), dtype=DTYPE)
        chosen: list[Tensor] = []
        for _ in range(q):
            pending = [t for t in (x_pending, *chosen) if t is not None]
            x_pend = torch.cat(pending) if pending else None
            weights = sample_simplex(surrogate.num_objectives, dtype=DTYPE)[0]
            reward = chebyshev_ei_reward(
                surrogate, weights, s.reward, s.mc_samples, x_pend, ref_point=ref
            )
            generator = torch.Generator().manual_seed(self.draw_seed())
            ensemble = train_ensemble(policy, self._starts(surrogate), reward, config, generator)
            avoid = taken if x_pend is None else torch.cat([taken, x_pend])
            chosen.append(self._pick(ensemble.best_states, ensemble.best_rewards, avoid))
        return torch.cat(chosen)

    def _starts(self, surrogate: Surrogate) -> Tensor:
        """L start states: k-means centres of the Pareto set (feasible front, or the least
        infeasible points while nothing is feasible), reused in turn when there are fewer."""
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        x_ok = surrogate.x_ok.numpy()
        if surrogate.feasible.any():
            feasible = surrogate.feasible.numpy()
            x_front = x_ok[feasible][pareto_mask(-surrogate.y_ok[feasible].numpy())]
        else:
            _, _, con, _ = self.arrays()
            violation = np.maximum(con, 0).sum(axis=1)
            x_front = x_ok[np.argsort(violation, kind="stable")[: s.policies]]
        unique = np.unique(x_front, axis=0)
        clusters = min(s.policies, len(unique))
        if clusters < len(unique):
            kmeans = KMeans(n_clusters=clusters, n_init=3, random_state=self.draw_seed())
            unique = kmeans.fit(unique).cluster_centers_
        starts = unique[np.arange(s.policies) % len(unique)]
        return torch.as_tensor(np.clip(starts, 0, 1), dtype=DTYPE)

    def _pick(self, states: Tensor, rewards: Tensor, avoid: Tensor) -> Tensor:
        """The best validated state that is not (almost) a point already evaluated or pending;
        a uniform random point if every policy ended on one (then the reward landscape is flat)."""
        for i in torch.argsort(rewards, descending=True, stable=True):
            gap = (avoid - states[i]).abs().amax(dim=-1)
            if len(avoid) == 0 or gap.min() > DUPLICATE_TOLERANCE:
                return states[i : i + 1]
        return torch.as_tensor(self._rng.random((1, self.spec.dim)), dtype=DTYPE)
