"""qLogNEHVI: botorch's noisy expected hypervolume improvement (log form), the strong baseline.

Constraints and failures enter as GP-modelled constraints (`optimizer.models`).
"""

from __future__ import annotations

from torch import Tensor

from optimizer.algorithms.acquisition import (
    AcquisitionSettings,
    log_nehvi,
    maximise,
    reference_point,
)
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.models import Surrogate


class QLogNEHVI(ModelBasedOptimizer):
    name = "qlognehvi"
    settings_class = AcquisitionSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        settings: AcquisitionSettings = self.settings  # type: ignore[assignment]
        ref = reference_point(surrogate, self.spec.ref_point)
        acqf = log_nehvi(surrogate, ref, settings.mc_samples, x_pending)
        return maximise(acqf, self.spec.dim, q, settings)
