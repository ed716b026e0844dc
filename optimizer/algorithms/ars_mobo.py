"""ARS-MOBOpt (Deutel, Kontes, Mutschler, Teich): multi-objective BO whose acquisition is
maximised by an ensemble of reinforcement-learning policies trained with Augmented Random Search.

Per proposal: fit the GP surrogate (`optimizer.models`); start L policies from the k-means
centres of the current Pareto set (in input space); train them with ARS on the reward, each
rollout H steps through the unit cube; validate each policy with a deterministic rollout and
propose the best state any of them reached.

The reward is qLogNEHVI itself (`reward="log-nehvi"`, the default since issue 13's whole
searches), or the paper's Chebyshev-EI of random ParEGO weights (`"log-ei"`, `"ei"`;
`optimizer.ars.reward`), which unlike the paper counts only improvement inside the
hypervolume reference box (`reference_box`). Other selectable variants (what each adds is
measured in docs/optimizer.md): `inner` swaps the ARS ensemble for L-BFGS on the same reward
(botorch `optimize_acqf`) or for uniform random search with as many reward evaluations;
`policy="linear"` is the paper's linear policy; `polish=True` runs L-BFGS from the best
ARS states (a better maximiser of a fixed reward, worse whole searches on DTLZ2);
`weights="stratified"` (Chebyshev rewards only) gives every policy its own quasi-random
weight vector and picks among the policies' proposals by qLogNEHVI. Batches (q > 1) are built
greedily: each further point sees the earlier ones as pending (and, with a Chebyshev reward,
gets new weights). Constraints and failed evaluations enter as GP-modelled constraints; the
modelling (log resources, derived constraints, rounding) is the one every GP method shares
(`optimizer.models`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from botorch.generation.gen import gen_candidates_scipy
from botorch.utils.sampling import sample_simplex
from sklearn.cluster import KMeans
from torch import Tensor

from optimizer.algorithms.acquisition import (
    AcquisitionSettings,
    log_nehvi,
    maximise,
    reference_point,
)
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.ars.policy import LinearPolicy, MlpPolicy, Policy
from optimizer.ars.reward import REWARDS, PerPolicyReward, Reward, chebyshev_ei_reward
from optimizer.ars.trainer import ArsConfig, reward_evaluations, train_ensemble
from optimizer.core import OptimizerError, Settings
from optimizer.hypervolume import pareto_mask
from optimizer.models import DTYPE, ModellingSettings, Surrogate, round_discrete

#: Two proposals closer than this (max-norm in the unit cube) count as the same point.
DUPLICATE_TOLERANCE = 1e-6

INNER = ("ars", "lbfgs", "random")
POLICIES = ("mlp", "linear")
WEIGHTS = ("shared", "stratified")
#: The Chebyshev rewards (optimizer.ars.reward) and qLogNEHVI itself, which needs no weights.
ARS_REWARDS = (*REWARDS, "log-nehvi")


@dataclass(frozen=True)
class ArsMoboSettings(ModellingSettings, Settings):
    initial_points: int | None = None
    policies: int = 4  # L
    directions: int = 8  # N
    top_directions: int = 4  # K
    noise: float = 0.05  # nu
    step_size: float = 0.02  # alpha
    horizon: int = 10  # H
    iterations: int = 5  # ARS training steps per proposal
    hidden: int = 16
    max_step: float = 0.1
    mc_samples: int = 32
    #: qLogNEHVI, or a Chebyshev-EI reward (optimizer.ars.reward); chosen by issue 13's searches.
    reward: str = "log-nehvi"
    #: Chebyshev rewards: count only improvement inside the hypervolume reference box.
    reference_box: bool = True
    #: What maximises the reward: the ARS ensemble, or (ablation) L-BFGS / random search.
    inner: str = "ars"
    policy: str = "mlp"
    #: L-BFGS (at most `polish_iterations` steps) from each policy's best validated state.
    #: Off: it maximises a fixed reward better, but whole searches do worse (issue 13).
    polish: bool = False
    polish_iterations: int = 50
    #: One shared random weight vector, or a stratified one per policy + qLogNEHVI pick.
    weights: str = "shared"
    #: The modelling every GP method shares (optimizer.models.ModellingSettings).
    log_objectives: str = "marked"
    derive_constraints: bool = True
    round_discrete: bool = True

    def __post_init__(self) -> None:
        self.check_modelling()
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
        if self.reward not in ARS_REWARDS:
            raise OptimizerError(f"ARS-MOBOpt reward must be one of {', '.join(ARS_REWARDS)}")
        for name, allowed in (("inner", INNER), ("policy", POLICIES), ("weights", WEIGHTS)):
            if getattr(self, name) not in allowed:
                raise OptimizerError(
                    f"ARS-MOBOpt setting {name} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.weights == "stratified" and self.inner != "ars":
            raise OptimizerError('ARS-MOBOpt weights="stratified" needs inner="ars"')
        if self.weights == "stratified" and self.reward not in REWARDS:
            raise OptimizerError(
                f'ARS-MOBOpt weights="stratified" needs a Chebyshev reward '
                f"({', '.join(REWARDS)}); {self.reward!r} has no weights"
            )
        if self.polish_iterations < 1:
            raise OptimizerError("ARS-MOBOpt setting polish_iterations must be >= 1")


class ArsMobo(ModelBasedOptimizer):
    name = "ars-mobo"
    settings_class = ArsMoboSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        # One reference point per proposal: qLogNEHVI's, and the Chebyshev rewards' box.
        point = reference_point(surrogate, self.spec.ref_point)
        ref = point if s.reference_box else None
        taken = torch.as_tensor(np.array([o.x for o in self.observations]), dtype=DTYPE)
        chosen: list[Tensor] = []
        for _ in range(q):
            pending = [t for t in (x_pending, *chosen) if t is not None]
            x_pend = torch.cat(pending) if pending else None
            avoid = taken if x_pend is None else torch.cat([taken, x_pend])
            if s.weights == "stratified":
                chosen.append(self._propose_stratified(surrogate, point, ref, x_pend, avoid))
                continue
            if s.reward == "log-nehvi":
                reward = Reward(log_nehvi(surrogate, point, s.mc_samples, x_pend))
            else:
                weights = sample_simplex(surrogate.num_objectives, dtype=DTYPE)[0]
                reward = chebyshev_ei_reward(
                    surrogate, weights, s.reward, s.mc_samples, x_pend, ref_point=ref
                )
            states, rewards = self._maximise(surrogate, reward)
            chosen.append(self._pick(states, rewards, avoid))
        return torch.cat(chosen)

    def _config(self) -> ArsConfig:
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        return ArsConfig(
            s.directions, s.top_directions, s.noise, s.step_size, s.horizon, s.iterations
        )

    def _policy(self) -> Policy:
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        if s.policy == "linear":
            return LinearPolicy(self.spec.dim, s.max_step)
        return MlpPolicy(self.spec.dim, s.hidden, s.max_step)

    def _maximise(self, surrogate: Surrogate, reward: Reward) -> tuple[Tensor, Tensor]:
        """Candidate states and their rewards from the configured inner optimiser."""
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        generator = torch.Generator().manual_seed(self.draw_seed())
        if s.inner == "lbfgs":
            x = maximise(reward.acqf, self.spec.dim, 1, AcquisitionSettings())
            return x, reward(x)
        if s.inner == "random":
            count = reward_evaluations(self._config(), s.policies)
            x = torch.rand(count, self.spec.dim, generator=generator, dtype=DTYPE)
            values = torch.cat([reward(chunk) for chunk in x.split(2048)])
            top = torch.topk(values, min(s.policies, count)).indices
            return x[top], values[top]
        ensemble = train_ensemble(
            self._policy(), self._starts(surrogate), reward, self._config(), generator
        )
        states, rewards = ensemble.best_states, ensemble.best_rewards
        if s.polish:
            states, rewards = self._polish(reward, states, rewards)
        return states, rewards

    def _polish(self, reward: Reward, states: Tensor, rewards: Tensor) -> tuple[Tensor, Tensor]:
        """L-BFGS-B from each ARS state on the same acquisition; the ARS states stay candidates
        (a polish that fails or ends lower loses nothing)."""
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        lower = torch.zeros(self.spec.dim, dtype=DTYPE)
        try:
            # L-BFGS stopping early ("ABNORMAL") still returns its best point: not news.
            # botorch forces such warnings to "always", so record them and drop the record.
            with warnings.catch_warnings(record=True):
                polished, _ = gen_candidates_scipy(
                    initial_conditions=states.unsqueeze(1).clone(),
                    acquisition_function=reward.acqf,
                    lower_bounds=lower,
                    upper_bounds=lower + 1,
                    options={"maxiter": s.polish_iterations},
                )
        except Exception as exc:  # a numerical failure of the polish: keep the ARS states
            warnings.warn(f"ars-mobo: L-BFGS polish failed ({exc})", RuntimeWarning, stacklevel=2)
            return states, rewards
        polished = polished.squeeze(1).detach().clamp(0, 1)
        return torch.cat([polished, states]), torch.cat([reward(polished), rewards])

    def _propose_stratified(
        self,
        surrogate: Surrogate,
        point: Tensor,
        ref: Tensor | None,
        x_pend: Tensor | None,
        avoid: Tensor,
    ) -> Tensor:
        """One quasi-random weight vector per policy, each policy trained on its own reward;
        the policies' best states (polished if asked) ranked by qLogNEHVI."""
        s: ArsMoboSettings = self.settings  # type: ignore[assignment]
        m = surrogate.num_objectives
        weights = sample_simplex(m, s.policies, qmc=True, seed=self.draw_seed(), dtype=DTYPE)
        rewards = [
            chebyshev_ei_reward(surrogate, w, s.reward, s.mc_samples, x_pend, ref_point=ref)
            for w in weights
        ]
        generator = torch.Generator().manual_seed(self.draw_seed())
        ensemble = train_ensemble(
            self._policy(),
            self._starts(surrogate),
            PerPolicyReward(rewards),
            self._config(),
            generator,
        )
        states = ensemble.best_states
        if s.polish:
            polished = [
                self._polish(r, states[i : i + 1], ensemble.best_rewards[i : i + 1])[0]
                for i, r in enumerate(rewards)
            ]
            states = torch.cat(polished)
        nehvi = log_nehvi(surrogate, point, s.mc_samples, x_pend)
        with torch.no_grad():
            scores = nehvi(states.unsqueeze(-2))
        return self._pick(states, torch.nan_to_num(scores, nan=-torch.inf), avoid)

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
        a uniform random point if every policy ended on one (then the reward landscape is flat).
        Compared at their bin centres: two states in the same bins are the same configuration
        (and the GP, rounding too, gives them the same reward)."""
        discrete = self.modelling().discrete
        states, avoid = round_discrete(states, discrete), round_discrete(avoid, discrete)
        for i in torch.argsort(rewards, descending=True, stable=True):
            gap = (avoid - states[i]).abs().amax(dim=-1)
            if len(avoid) == 0 or gap.min() > DUPLICATE_TOLERANCE:
                return states[i : i + 1]
        return torch.as_tensor(self._rng.random((1, self.spec.dim)), dtype=DTYPE)
