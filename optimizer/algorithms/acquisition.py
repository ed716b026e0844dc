"""Acquisition optimisation settings and helpers shared by the botorch baselines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.optim import optimize_acqf
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from torch import Tensor

from optimizer.core import Settings
from optimizer.models import DTYPE, ModellingSettings, Surrogate


@dataclass(frozen=True)
class AcquisitionSettings(ModellingSettings, Settings):
    """How the acquisition function is estimated and maximised (botorch's multi-start L-BFGS),
    plus the modelling every GP method shares (`ModellingSettings`)."""

    initial_points: int | None = None
    mc_samples: int = 128
    num_restarts: int = 8
    raw_samples: int = 256
    maxiter: int = 100
    log_objectives: str = "marked"
    derive_constraints: bool = True
    round_discrete: bool = True

    def __post_init__(self) -> None:
        self.check_modelling()


def noisy_baseline_kwargs(
    surrogate: Surrogate, mc_samples: int, x_pending: Tensor | None
) -> dict[str, Any]:
    """What every noisy (X_baseline) botorch acquisition here is built with: the surrogate,
    its observed inputs as baseline (pruned), its per-output sampler and the pending points."""
    return {
        "model": surrogate.model,
        "X_baseline": surrogate.x_ok,
        "sampler": surrogate.sampler(mc_samples),
        "X_pending": x_pending,
        "prune_baseline": True,
    }


def log_nehvi(
    surrogate: Surrogate, ref_point: Tensor, mc_samples: int, x_pending: Tensor | None
) -> qLogNoisyExpectedHypervolumeImprovement:
    """qLogNEHVI over the surrogate's objectives with its constraints, for a reference point
    in the model's (maximisation) space; the one construction the qlognehvi baseline,
    ARS-MOBOpt's stratified pick and its log-NEHVI reward share."""
    return qLogNoisyExpectedHypervolumeImprovement(
        ref_point=ref_point.tolist(),
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(surrogate.num_objectives))),
        constraints=surrogate.constraints or None,
        cache_root=False,
        **noisy_baseline_kwargs(surrogate, mc_samples, x_pending),
    )


def maximise(acqf: AcquisitionFunction, dim: int, q: int, settings: AcquisitionSettings) -> Tensor:
    """Sequential greedy maximisation of a q-batch acquisition over the unit cube."""
    bounds = torch.stack([torch.zeros(dim, dtype=DTYPE), torch.ones(dim, dtype=DTYPE)])
    candidates, _ = optimize_acqf(
        acqf,
        bounds=bounds,
        q=q,
        num_restarts=settings.num_restarts,
        raw_samples=settings.raw_samples,
        sequential=True,
        # A failed L-BFGS run still returns its best point; restarting from new initial
        # conditions can cost minutes on a flat acquisition surface for little gain.
        retry_on_optimization_warning=False,
        options={"batch_limit": settings.num_restarts, "maxiter": settings.maxiter},
    )
    return candidates


def reference_point(surrogate: Surrogate, ref_point: tuple[float, ...] | None) -> Tensor:
    """The reference point in the model's (maximisation) space: the problem's, or inferred
    from the observed feasible front (botorch's heuristic) when the problem gives none."""
    if ref_point is not None:
        return -torch.as_tensor(ref_point, dtype=DTYPE)
    y = surrogate.y_ok[surrogate.feasible]
    return infer_reference_point(y if len(y) else surrogate.y_ok)
