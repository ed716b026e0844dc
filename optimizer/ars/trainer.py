"""Augmented Random Search (Mania et al. 2018, V1-t) for an ensemble of policies at once.

Per training step and policy: N direction matrices with i.i.d. standard normal entries; roll out
the policy with parameters ``theta +- nu * delta``; keep the K directions with the largest
``max(r+, r-)``; update ``theta += alpha / (K sigma_R) * sum_k (r+_k - r-_k) delta_k`` with
sigma_R the standard deviation of the 2K rewards used. All L policies and 2N perturbations are
rolled out together in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from optimizer.ars.policy import Policy, rollout


@dataclass(frozen=True)
class ArsConfig:
    directions: int  # N
    top_directions: int  # K <= N
    noise: float  # nu
    step_size: float  # alpha
    horizon: int  # H
    iterations: int  # training steps


def reward_evaluations(config: ArsConfig, policies: int) -> int:
    """States one `train_ensemble` call scores: training rollouts plus the validation rollout
    (the budget the random-search ablation gets)."""
    return (config.iterations * 2 * config.directions + 1) * policies * config.horizon


@dataclass
class TrainedEnsemble:
    """Validation result: the best state each trained policy's deterministic rollout reached."""

    best_states: Tensor  # (L, d)
    best_rewards: Tensor  # (L,)


def train_ensemble(
    policy: Policy,
    starts: Tensor,
    reward: Callable[[Tensor], Tensor],
    config: ArsConfig,
    generator: torch.Generator,
) -> TrainedEnsemble:
    """Train one policy per start state (L, d) with ARS, then validate each deterministically.

    `reward` scores a policy-major batch of states (rows of policy l first), so a
    `PerPolicyReward` can give each policy its own scalarisation."""
    n_pol, n_dir, k = starts.shape[0], config.directions, config.top_directions
    theta = policy.initial(n_pol, generator)
    # Every perturbed copy of policy l starts where policy l starts.
    batch_starts = starts.repeat_interleave(2 * n_dir, dim=0)

    def returns(thetas: Tensor, start: Tensor) -> Tensor:
        return rollout(policy, thetas, start, config.horizon, reward).rewards.mean(dim=1)

    for _ in range(config.iterations):
        delta = torch.randn(
            n_pol, n_dir, policy.num_params, generator=generator, dtype=torch.float64
        )
        perturbed = torch.cat(
            [theta[:, None] + config.noise * delta, theta[:, None] - config.noise * delta], dim=1
        )  # (L, 2N, P)
        r = returns(perturbed.reshape(-1, policy.num_params), batch_starts).view(n_pol, 2, n_dir)
        r_plus, r_minus = r[:, 0], r[:, 1]
        top = torch.topk(torch.maximum(r_plus, r_minus), k, dim=1).indices  # (L, K)
        r_plus, r_minus = r_plus.gather(1, top), r_minus.gather(1, top)
        sigma = torch.cat([r_plus, r_minus], dim=1).std(dim=1).clamp_min(1e-12)  # (L,)
        chosen = delta.gather(1, top[..., None].expand(-1, -1, policy.num_params))
        step = ((r_plus - r_minus)[..., None] * chosen).sum(dim=1)  # (L, P)
        theta = theta + (config.step_size / (k * sigma))[:, None] * step

    final = rollout(policy, theta, starts, config.horizon, reward)
    best = final.rewards.argmax(dim=1)
    index = torch.arange(n_pol)
    return TrainedEnsemble(final.states[index, best], final.rewards[index, best])
