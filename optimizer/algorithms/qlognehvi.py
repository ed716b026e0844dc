"""qLogNEHVI: botorch's noisy expected hypervolume improvement (log form), the strong baseline.

Constraints and failures enter as GP-modelled constraints (`optimizer.models`).
"""

from __future__ import annotations

from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from torch import Tensor

from optimizer.algorithms.acquisition import (
    AcquisitionSettings,
    maximise,
    noisy_baseline_kwargs,
    reference_point,
)
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.models import Surrogate


class QLogNEHVI(ModelBasedOptimizer):
    name = "qlognehvi"
    settings_class = AcquisitionSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        settings: AcquisitionSettings = self.settings  # type: ignore[assignment]
        acqf = qLogNoisyExpectedHypervolumeImprovement(
            ref_point=reference_point(surrogate, self.spec.ref_point).tolist(),
            objective=IdentityMCMultiOutputObjective(
                outcomes=list(range(surrogate.num_objectives))
            ),
            constraints=surrogate.constraints or None,
            cache_root=False,
            **noisy_baseline_kwargs(surrogate, settings, x_pending),
        )
        return maximise(acqf, self.spec.dim, q, settings)
