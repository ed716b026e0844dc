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
    reference_point,
    sampler,
)
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.models import Surrogate


class QLogNEHVI(ModelBasedOptimizer):
    name = "qlognehvi"
    settings_class = AcquisitionSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        settings: AcquisitionSettings = self.settings  # type: ignore[assignment]
        acqf = qLogNoisyExpectedHypervolumeImprovement(
            model=surrogate.model,
            ref_point=reference_point(surrogate, self.spec.ref_point).tolist(),
            X_baseline=surrogate.x_ok,
            sampler=sampler(surrogate, settings),
            objective=IdentityMCMultiOutputObjective(
                outcomes=list(range(surrogate.num_objectives))
            ),
            constraints=surrogate.constraints or None,
            X_pending=x_pending,
            prune_baseline=True,
            cache_root=False,
        )
        return maximise(acqf, self.spec.dim, q, settings)
