"""A small MLP policy that walks through the unit cube, evaluated for many parameter sets at once.

ARS perturbs the flat parameter vector, so the policy is a pure function of ``(theta, state)``
with a batch of thetas: one tensor program evaluates all ``2 L N`` perturbed policies per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor


class Policy(Protocol):
    """What the ARS trainer needs of a policy: a flat parameter vector and a batched step."""

    @property
    def num_params(self) -> int: ...

    def initial(self, count: int, generator: torch.Generator) -> Tensor: ...

    def act(self, theta: Tensor, state: Tensor, progress: float) -> Tensor: ...


@dataclass(frozen=True)
class LinearPolicy:
    """The paper's linear policy: ``step = clip(Theta [x, t/H, 1], +-max_step)``.

    ``d (d + 2)`` parameters against the MLP's ``(2d + 2) hidden + d``: a quarter of them for
    d = 8 and 16 hidden units, so the ARS gradient estimate from the same N directions is less
    noisy. Starts at zero (Mania et al.), i.e. an untrained policy stands still.
    """

    dim: int
    max_step: float

    @property
    def num_params(self) -> int:
        return self.dim * (self.dim + 2)

    def initial(self, count: int, generator: torch.Generator) -> Tensor:
        return torch.zeros(count, self.num_params, dtype=torch.float64)

    def act(self, theta: Tensor, state: Tensor, progress: float) -> Tensor:
        b, d = theta.shape[0], self.dim
        ones = torch.ones(b, 1, dtype=state.dtype)
        inputs = torch.cat([state, torch.full((b, 1), progress, dtype=state.dtype), ones], dim=1)
        out = torch.bmm(theta.view(b, d, d + 2), inputs.unsqueeze(-1)).squeeze(-1)
        return out.clamp(-self.max_step, self.max_step)


@dataclass(frozen=True)
class MlpPolicy:
    """``step = max_step * tanh(W2 tanh(W1 [x, t/H] + b1) + b2)``; ``x' = clip(x + step)``.

    The input holds the position and the progress through the rollout, so a policy can take
    large steps first and fine ones at the end.
    """

    dim: int
    hidden: int
    max_step: float

    @property
    def num_params(self) -> int:
        return (self.dim + 1) * self.hidden + self.hidden + self.hidden * self.dim + self.dim

    def initial(self, count: int, generator: torch.Generator) -> Tensor:
        """`count` parameter vectors: random first layer, zero output layer (so the untrained
        policy stands still and all movement is learnt, as ARS starts linear policies at 0)."""
        fan_in = self.dim + 1
        w1 = torch.randn(count, self.hidden * fan_in, generator=generator, dtype=torch.float64)
        rest = torch.zeros(count, self.num_params - w1.shape[1], dtype=torch.float64)
        return torch.cat([w1 / fan_in**0.5, rest], dim=1)

    def act(self, theta: Tensor, state: Tensor, progress: float) -> Tensor:
        """Steps for a batch: theta (B, P), state (B, d) -> (B, d)."""
        b, d, h = theta.shape[0], self.dim, self.hidden
        sizes = [(d + 1) * h, h, h * d, d]
        w1, b1, w2, b2 = torch.split(theta, sizes, dim=1)
        inputs = torch.cat([state, torch.full((b, 1), progress, dtype=state.dtype)], dim=1)
        hidden = torch.tanh(torch.bmm(w1.view(b, h, d + 1), inputs.unsqueeze(-1)).squeeze(-1) + b1)
        out = torch.bmm(w2.view(b, d, h), hidden.unsqueeze(-1)).squeeze(-1) + b2
        return self.max_step * torch.tanh(out)


@dataclass
class Rollout:
    states: Tensor  # (B, H, d): the states visited after each step
    rewards: Tensor  # (B, H): the reward of each visited state


def rollout(
    policy: Policy,
    theta: Tensor,
    start: Tensor,
    horizon: int,
    reward: Callable[[Tensor], Tensor],
) -> Rollout:
    """Run `horizon` steps from `start` (B, d) for every parameter vector in `theta` (B, P)."""
    state = start
    states, rewards = [], []
    for t in range(horizon):
        state = (state + policy.act(theta, state, t / horizon)).clamp(0.0, 1.0)
        states.append(state)
        rewards.append(reward(state))
    return Rollout(torch.stack(states, dim=1), torch.stack(rewards, dim=1))
