"""The reward ARS trains on: expected improvement of a random Chebyshev scalarisation.

ParEGO-style: weights uniform on the simplex, augmented Chebyshev scalarisation of the
(normalised, negated) objectives; EI over the best feasible scalarised observation, estimated by
quasi-Monte Carlo with fixed base samples (the reparameterisation trick), so the reward is a
deterministic function of the state within one proposal and ARS compares like with like.
Constraints (and the failure model) weight the improvement by a smooth feasibility indicator.

`log-ei` (the default) rewards with log EI: in regions where EI underflows to 0 plain EI gives
ARS no signal at all, whereas log EI still ranks directions (see docs/optimizer.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from botorch.acquisition import AcquisitionFunction, qExpectedImprovement, qLogExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
from torch import Tensor

from optimizer.core import OptimizerError
from optimizer.models import Surrogate

REWARDS = ("log-ei", "ei")


def chebyshev_ei_reward(
    surrogate: Surrogate,
    weights: Tensor,
    kind: str,
    mc_samples: int,
    x_pending: Tensor | None,
    ref_point: Tensor | None = None,
    seed: int | None = None,
) -> Reward:
    """A function from states (B, d) to rewards (B,); its `acqf` is the differentiable
    acquisition behind it (for L-BFGS on the same reward).

    With `ref_point` (maximisation space, i.e. negated objectives), only improvement inside
    the reference box counts: it enters as one more constraint per objective, and the
    scalarisation normalises each objective between the reference point and the best value
    seen. Without it, ParEGO's extreme weights reward points that are excellent in one
    objective and useless for the hypervolume (observed on DTLZ2, see docs/optimizer.md).
    `seed` fixes the QMC base samples (else botorch draws their seed from torch's generator).
    """
    if kind not in REWARDS:
        raise OptimizerError(f"unknown ARS reward {kind!r}; choose one of {', '.join(REWARDS)}")
    m = surrogate.num_objectives
    y = surrogate.y_ok
    constraints = list(surrogate.constraints)
    in_box = surrogate.feasible
    if ref_point is not None:
        y = torch.cat([y, ref_point.unsqueeze(0)])
        constraints += [(lambda z, i=i: ref_point[i] - z[..., i]) for i in range(m)]
        in_box = in_box & (surrogate.y_ok > ref_point).all(dim=-1)
    scalarise = get_chebyshev_scalarization(weights=weights, Y=y)
    scalarised = scalarise(surrogate.y_ok)
    best = scalarised[in_box]
    best_f = best.max() if len(best) else scalarised.min()
    objective = GenericMCObjective(lambda z, X=None: scalarise(z[..., :m]))
    acq_class = qLogExpectedImprovement if kind == "log-ei" else qExpectedImprovement
    acqf = acq_class(
        model=surrogate.model,
        best_f=best_f,
        sampler=surrogate.sampler(mc_samples, seed=seed),
        objective=objective,
        constraints=constraints or None,
        X_pending=x_pending,
    )
    return Reward(acqf)


class Reward:
    """The acquisition value of single states, without gradients, non-finite values replaced
    by the batch's lowest finite one (ARS ranks directions; a NaN would poison the update)."""

    def __init__(self, acqf: AcquisitionFunction) -> None:
        self.acqf = acqf

    def __call__(self, states: Tensor) -> Tensor:
        with torch.no_grad():
            values = self.acqf(states.unsqueeze(-2))
        finite = torch.isfinite(values)
        floor = values[finite].min() if finite.any() else 0.0
        return torch.nan_to_num(values, nan=float(floor), neginf=float(floor))


class PerPolicyReward:
    """One reward per policy, for a batch of states ordered policy-major (as the ARS trainer
    lays out its rollouts): chunk l of the batch is scored by reward l."""

    def __init__(self, rewards: Sequence[Callable[[Tensor], Tensor]]) -> None:
        self.rewards = list(rewards)

    def __call__(self, states: Tensor) -> Tensor:
        chunks = states.chunk(len(self.rewards), dim=0)
        if len(chunks) != len(self.rewards) or len(states) % len(self.rewards):
            raise OptimizerError(
                f"{len(states)} states cannot be split among {len(self.rewards)} policies"
            )
        return torch.cat([r(c) for r, c in zip(self.rewards, chunks, strict=True)])
