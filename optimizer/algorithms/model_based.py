"""What the GP-based algorithms share: the initial design, then one model fit per `ask`."""

from __future__ import annotations

import warnings
from abc import abstractmethod

import numpy as np
import torch
from botorch.exceptions.errors import ModelFittingError
from torch import Tensor

from optimizer.core import Optimizer
from optimizer.models import (
    DTYPE,
    Modelling,
    ModellingSettings,
    Surrogate,
    default_initial_points,
    fit_surrogate,
)


class ModelBasedOptimizer(Optimizer):
    """Latin-hypercube initial design, then `_propose_with_model` on a freshly fitted GP.

    The design depends on the seed only, so every model-based algorithm given the same seed
    starts from the same points (a fair comparison). Until two evaluations succeeded there is
    nothing to model: proposals are then uniform random points. The surrogate's modelling
    (`optimizer.models.ModellingSettings`) is the same for all of them; model proposals come
    back with discrete coordinates at their bin centres (the point the GP reasoned about).
    """

    def initial_points(self) -> int:
        n = getattr(self.settings, "initial_points", None)
        return default_initial_points(self.spec.dim) if n is None else int(n)

    def _propose(self, q: int) -> np.ndarray:
        from_design = self.design_points(self.initial_points(), q)
        rest = q - len(from_design)
        if rest == 0:
            return from_design
        x, y, con, ok = self.arrays()
        if ok.sum() < 2:
            return np.vstack([from_design, self._rng.random((rest, self.spec.dim))])
        with self.seeded_torch():
            try:
                surrogate = fit_surrogate(x, y, con, ok, self.modelling())
            except ModelFittingError as exc:
                # Rare (degenerate data); a random point adds information, a crash loses the run.
                warnings.warn(
                    f"{self.name}: GP fit failed ({exc}); proposing random points",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return np.vstack([from_design, self._rng.random((rest, self.spec.dim))])
            chosen = self._propose_with_model(surrogate, rest, self._pending_tensor(from_design))
        chosen = surrogate.round(chosen.detach())
        return np.vstack([from_design, chosen.numpy()])

    def modelling(self) -> Modelling:
        """What the surrogate uses of the problem's structure, per this algorithm's settings."""
        if isinstance(self.settings, ModellingSettings):
            return self.settings.modelling(self.spec)
        return Modelling()

    def _pending_tensor(self, extra: np.ndarray) -> Tensor | None:
        """Points asked for but not yet told (plus `extra`), for the acquisition's X_pending."""
        rows = [*self.pending, *map(tuple, extra)]
        if not rows:
            return None
        return torch.as_tensor(np.array(rows, dtype=float), dtype=DTYPE)

    @abstractmethod
    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        """Return a (q, d) tensor of new points, given the fitted surrogate."""
