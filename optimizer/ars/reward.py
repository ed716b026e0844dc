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

from collections.abc import Callable

import torch
from botorch.acquisition import qExpectedImprovement, qLogExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.sampling import SobolQMCNormalSampler
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
) -> Callable[[Tensor], Tensor]:
    """A function from states (B, d) to rewards (B,).

    With `ref_point` (maximisation space, i.e. negated objectives), only improvement inside
    the reference box counts: it enters as one more constraint per objective, and the
    scalarisation normalises each objective between the reference point and the best value
    seen. Without it, ParEGO's extreme weights reward points that are excellent in one
    objective and useless for the hypervolume (observed on DTLZ2, see docs/optimizer.md).
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
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples])),
        objective=objective,
        constraints=constraints or None,
        X_pending=x_pending,
    )

    def reward(states: Tensor) -> Tensor:
        with torch.no_grad():
            values = acqf(states.unsqueeze(-2))
        floor = values[torch.isfinite(values)].min() if torch.isfinite(values).any() else 0.0
        return torch.nan_to_num(values, nan=float(floor), neginf=float(floor))

    return reward
