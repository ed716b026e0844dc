"""Gaussian-process surrogates shared by the model-based algorithms.

One `SingleTaskGP` per modelled outcome (a `ModelListGP`), so each outcome has its own training
set. Model outputs, in this order:

- objectives, negated (botorch maximises), fitted on the successful evaluations;
- constraint values (feasible where <= 0, as botorch's constraint callables expect) that are
  not derived from an objective (see below), fitted on the successful evaluations;
- when some evaluations failed, a *failure* outcome fitted on all evaluations: +1 where the
  evaluation failed, -1 where it succeeded. It enters the acquisition like any constraint, so
  the search learns to stay away from regions that fail instead of re-proposing them, and no
  fake objective value is ever invented.

Modelling shared by every GP method (issue 13), described by `Modelling` and chosen from the
problem's `ProblemSpec` by the algorithms' `ModellingSettings` (all on by default):

- **log resources**: an objective that is a strictly positive resource (flash, RAM, latency,
  MACs: spanning orders of magnitude, multiplicative in the hyperparameters) is modelled as
  ``log(value)`` by its GP. The log sits in the GP's outcome transform, so the posterior comes
  back in the original space (log-normal): reference points, hypervolume improvement and
  Chebyshev scalarisation stay in the original objective space, exactly as without the log.
  An objective with any non-positive observed value is modelled as is.
- **derived constraints**: a constraint that is an affine function ``a * objective_j + b`` of
  an objective (``ROM <= 1000 KB`` told as ``ROM / 1000 - 1`` with ROM an objective) is
  computed from that objective's posterior samples instead of a separate GP, so the model can
  never believe a point is small enough to fit and too big to fit at once. Used only when
  every observation obeys the declared relation (else the constraint gets its own GP).
- **rounding**: integer and categorical coordinates are mapped to the centre of their bin
  inside every GP (an input transform, in training and prediction alike), so the GP sees the
  configuration that was evaluated and treats every point of a bin as that one point.
  Gradients pass straight through the rounding (as botorch's `Round`), so L-BFGS still moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.input import InputTransform
from botorch.models.transforms.outcome import (
    ChainedOutcomeTransform,
    OutcomeTransform,
    Standardize,
)
from botorch.models.transforms.utils import norm_to_lognorm_mean, norm_to_lognorm_variance
from botorch.posteriors import Posterior
from botorch.posteriors.transformed import TransformedPosterior
from botorch.sampling import MCSampler, SobolQMCNormalSampler
from botorch.sampling.list_sampler import ListSampler
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from optimizer.core import OptimizerError, ProblemSpec

DTYPE = torch.float64

#: `ModellingSettings.log_objectives` choices.
LOG_OBJECTIVES = ("marked", "positive", "none")


@dataclass(frozen=True)
class Modelling:
    """What the surrogate may use beyond the numbers (see the module docstring).

    `discrete`: per input coordinate, the bin edges ``(0, ..., 1)`` of a discrete parameter or
    ``()`` for a continuous one (empty: all continuous). `log_objectives`: objectives to model
    in log space (those with a non-positive observation are not). `affine_constraints`: per
    constraint ``(j, a, b)`` when its value is ``a * objective_j + b``, else None.
    """

    discrete: tuple[tuple[float, ...], ...] = ()
    log_objectives: tuple[int, ...] = ()
    affine_constraints: tuple[tuple[int, float, float] | None, ...] = ()


class ModellingSettings:
    """The modelling switches every GP method shares (one place, so comparisons stay fair).

    A mixin: each GP method's settings dataclass declares the three fields itself, after its
    own (so error messages list the algorithm's settings first), with these defaults, and
    calls `check_modelling` from `__post_init__`.

    `log_objectives`: "marked" models the objectives the problem marks as positive resources in
    log space, "positive" every objective whose observations are all > 0, "none" none.
    `derive_constraints`: constraints affine in an objective come from the objective's model.
    `round_discrete`: the GPs see discrete inputs at their bin centres.
    """

    log_objectives: str
    derive_constraints: bool
    round_discrete: bool

    def check_modelling(self) -> None:
        if self.log_objectives not in LOG_OBJECTIVES:
            raise OptimizerError(
                f"log_objectives must be one of {', '.join(LOG_OBJECTIVES)}, "
                f"got {self.log_objectives!r}"
            )

    def modelling(self, spec: ProblemSpec) -> Modelling:
        """The `Modelling` these switches select for a problem."""
        logs = {
            "marked": tuple(spec.positive_objectives),
            "positive": tuple(range(spec.num_objectives)),
            "none": (),
        }[self.log_objectives]
        return Modelling(
            discrete=spec.discrete if self.round_discrete else (),
            log_objectives=logs,
            affine_constraints=spec.affine_constraints if self.derive_constraints else (),
        )


@dataclass
class Surrogate:
    """A fitted model and what acquisition functions need alongside it."""

    model: ModelListGP
    num_objectives: int
    constraints: list[Callable[[Tensor], Tensor]]
    #: Inputs of the successful evaluations, and their negated objectives (maximisation).
    x_ok: Tensor
    y_ok: Tensor
    #: Which successful evaluations satisfy every constraint.
    feasible: Tensor
    #: What the fit used: objectives modelled in log space, constraints derived from an
    #: objective (indices into the problem's constraints), the input bins.
    log_objectives: tuple[int, ...] = ()
    derived_constraints: tuple[int, ...] = ()
    discrete: tuple[tuple[float, ...], ...] = ()

    def sampler(self, mc_samples: int, seed: int | None = None) -> MCSampler:
        """A QMC sampler for this model's posterior: one per output once a log-modelled
        objective makes the posterior a list (each with its own seed, so outputs stay
        independent); a fixed `seed` makes the samples repeat."""
        shape = torch.Size([mc_samples])
        if not self.log_objectives:
            return SobolQMCNormalSampler(sample_shape=shape, seed=seed)
        count = len(self.model.models)
        seeds = [None if seed is None else seed + i for i in range(count)]
        return ListSampler(*(SobolQMCNormalSampler(sample_shape=shape, seed=s) for s in seeds))

    def round(self, x: Tensor) -> Tensor:
        """Points with their discrete coordinates at their bin centres (the canonical point of
        the configuration they decode to)."""
        return round_discrete(x, self.discrete)


def round_discrete(x: Tensor, discrete: Sequence[Sequence[float]]) -> Tensor:
    """`x` (..., d) with every discrete coordinate moved to the centre of its bin."""
    if not any(len(e) for e in discrete):
        return x
    out = x.clone()
    for i, edges in enumerate(discrete):
        if not edges:
            continue
        e = torch.as_tensor(edges, dtype=x.dtype, device=x.device)
        # A point on an inner edge belongs to the bin above it (the decoders floor).
        k = torch.searchsorted(e[1:-1].contiguous(), x[..., i].detach().contiguous(), right=True)
        out[..., i] = (e[k] + e[k + 1]) / 2
    return out


class RoundToBins(InputTransform):
    """Discrete coordinates to their bin centres, in training and prediction; the gradient
    passes straight through (so acquisition optimisers still see a direction)."""

    def __init__(self, discrete: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.discrete = tuple(tuple(float(v) for v in e) for e in discrete)
        self.transform_on_train = True
        self.transform_on_eval = True
        self.transform_on_fantasize = True

    def transform(self, X: Tensor) -> Tensor:
        return X + (round_discrete(X, self.discrete) - X).detach()


class NegatedLog(OutcomeTransform):
    """For a negated positive objective ``y = -v``: the GP models ``log(v)``; its posterior
    comes back as ``-exp(.)`` of the Gaussian one (log-normal), in the original space.

    One transform rather than botorch's `Log` after a negation: botorch's samplers unwrap one
    level of `TransformedPosterior` only."""

    def forward(
        self, Y: Tensor, Yvar: Tensor | None = None, X: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        if Yvar is not None:
            raise NotImplementedError("NegatedLog does not transform observation noise")
        return torch.log(-Y), None

    def untransform(
        self, Y: Tensor, Yvar: Tensor | None = None, X: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        if Yvar is not None:
            raise NotImplementedError("NegatedLog does not transform observation noise")
        return -torch.exp(Y), None

    def untransform_posterior(self, posterior: Posterior, X: Tensor | None = None) -> Posterior:
        return TransformedPosterior(
            posterior=posterior,
            sample_transform=lambda s: -torch.exp(s),
            mean_transform=lambda m, v: -norm_to_lognorm_mean(m, v),
            variance_transform=norm_to_lognorm_variance,
        )


def _fit_gp(
    x: Tensor, y: Tensor, discrete: Sequence[Sequence[float]], log: bool = False
) -> SingleTaskGP:
    outcome: OutcomeTransform = Standardize(m=1)
    if log:
        outcome = ChainedOutcomeTransform(log=NegatedLog(), standardize=outcome)
    rounding = RoundToBins(discrete) if any(len(e) for e in discrete) else None
    gp = SingleTaskGP(x, y.unsqueeze(-1), outcome_transform=outcome, input_transform=rounding)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    return gp


def _derived(objectives: Tensor, constraints: Tensor, modelling: Modelling) -> dict[int, tuple]:
    """Constraints to compute from an objective: declared affine, and every observation obeys
    the declaration (an imputed or mis-declared value gets its own GP instead)."""
    out = {}
    for k, rel in enumerate(modelling.affine_constraints):
        if rel is None or k >= constraints.shape[1]:
            continue
        j, a, b = rel
        told = constraints[:, k]
        if torch.allclose(a * objectives[:, j] + b, told, rtol=1e-6, atol=1e-9):
            out[k] = (int(j), float(a), float(b))
    return out


def _output(i: int) -> Callable[[Tensor], Tensor]:
    """A constraint callable reading model output i."""
    return lambda z: z[..., i]


def fit_surrogate(
    x: np.ndarray,
    objectives: np.ndarray,
    constraints: np.ndarray,
    ok: np.ndarray,
    modelling: Modelling | None = None,
) -> Surrogate:
    """Fit the per-outcome GPs (see the module docstring). Needs >= 2 successful evaluations.

    Without `modelling`, every outcome is modelled as is, each constraint by its own GP.
    Separate models rather than one batched multi-output GP: measured 4x faster to fit and to
    sample from on the TinyML-like problem (7 outcomes, 60 points), one thread.
    """
    modelling = modelling or Modelling()
    discrete = modelling.discrete
    x_all = torch.as_tensor(x, dtype=DTYPE)
    x_ok = x_all[torch.as_tensor(ok)]
    obj = torch.as_tensor(objectives, dtype=DTYPE)
    y_ok = -obj
    con = torch.as_tensor(constraints, dtype=DTYPE)
    m, c = y_ok.shape[1], con.shape[1]
    logs = tuple(sorted(j for j in set(modelling.log_objectives) if (obj[:, j] > 0).all()))
    derived = _derived(obj, con, modelling)
    models = [_fit_gp(x_ok, y_ok[:, i], discrete, log=i in logs) for i in range(m)]
    callables: list[Callable[[Tensor], Tensor]] = []
    for k in range(c):
        if k in derived:
            j, a, b = derived[k]
            # Model outputs are negated objectives: a * v + b = b - a * z_j.
            callables.append(lambda z, j=j, a=a, b=b: b - a * z[..., j])
        else:
            callables.append(_output(len(models)))
            models.append(_fit_gp(x_ok, con[:, k], discrete))
    if not ok.all():
        label = torch.as_tensor(np.where(ok, -1.0, 1.0), dtype=DTYPE)
        callables.append(_output(len(models)))
        models.append(_fit_gp(x_all, label, discrete))
    feasible = (con <= 0).all(dim=-1) if c else torch.ones(len(x_ok), dtype=torch.bool)
    return Surrogate(
        ModelListGP(*models), m, callables, x_ok, y_ok, feasible,
        log_objectives=logs, derived_constraints=tuple(sorted(derived)), discrete=discrete,
    )  # fmt: skip


def default_initial_points(dim: int) -> int:
    """2(d + 1) points: enough for a first GP fit without spending a small budget on them."""
    return 2 * (dim + 1)
