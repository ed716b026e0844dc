"""qNParEGO: expected improvement of a random Chebyshev scalarisation (botorch's log form).

Each point of a batch gets its own random weights (uniform on the simplex), so a batch spreads
along the front. Constraints and failures enter as GP-modelled constraints.
"""

from __future__ import annotations

import torch
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.utils.sampling import sample_simplex
from torch import Tensor

from optimizer.algorithms.acquisition import AcquisitionSettings, maximise, sampler
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.models import DTYPE, Surrogate


class QNParEGO(ModelBasedOptimizer):
    name = "qnparego"
    settings_class = AcquisitionSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        settings: AcquisitionSettings = self.settings  # type: ignore[assignment]
        chosen: list[Tensor] = []
        for _ in range(q):
            pending = [t for t in (x_pending, *chosen) if t is not None]
            acqf = qLogNParEGO(
                model=surrogate.model,
                X_baseline=surrogate.x_ok,
                scalarization_weights=sample_simplex(surrogate.num_objectives, dtype=DTYPE)[0],
                sampler=sampler(settings),
                objective=IdentityMCMultiOutputObjective(
                    outcomes=list(range(surrogate.num_objectives))
                ),
                constraints=surrogate.constraints or None,
                X_pending=torch.cat(pending) if pending else None,
                prune_baseline=True,
            )
            chosen.append(maximise(acqf, self.spec.dim, 1, settings))
        return torch.cat(chosen)
