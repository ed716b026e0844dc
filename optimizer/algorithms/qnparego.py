"""qNParEGO: expected improvement of a random Chebyshev scalarisation (botorch's log form).

Each point of a batch gets its own random weights (uniform on the simplex), so a batch spreads
along the front. Constraints and failures enter as GP-modelled constraints.

With `reference_box` (the default since issue 13) it works in the same reference box as
qLogNEHVI and ARS-MOBOpt: the scalarisation normalises each objective between the reference
point and the best value seen, and only improvement inside the box counts (one more constraint
per objective), exactly as ARS-MOBOpt's reward. Without it, it is botorch's `qLogNParEGO`
(normalised by the observed range, improvement anywhere counts): then extreme weights reward
points outside the box that add no hypervolume, a handicap the others do not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.multi_objective.parego import qLogNParEGO
from botorch.acquisition.objective import GenericMCObjective
from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
from botorch.utils.sampling import sample_simplex
from torch import Tensor

from optimizer.algorithms.acquisition import (
    AcquisitionSettings,
    maximise,
    noisy_baseline_kwargs,
    reference_point,
)
from optimizer.algorithms.model_based import ModelBasedOptimizer
from optimizer.models import DTYPE, Surrogate


@dataclass(frozen=True)
class QNParEGOSettings(AcquisitionSettings):
    #: Scalarise and reward improvement inside the hypervolume reference box (module docstring).
    reference_box: bool = True


class QNParEGO(ModelBasedOptimizer):
    name = "qnparego"
    settings_class = QNParEGOSettings

    def _propose_with_model(self, surrogate: Surrogate, q: int, x_pending: Tensor | None) -> Tensor:
        settings: QNParEGOSettings = self.settings  # type: ignore[assignment]
        chosen: list[Tensor] = []
        for _ in range(q):
            pending = [t for t in (x_pending, *chosen) if t is not None]
            weights = sample_simplex(surrogate.num_objectives, dtype=DTYPE)[0]
            x_pend = torch.cat(pending) if pending else None
            if settings.reference_box:
                acqf = self._boxed(surrogate, weights, x_pend)
            else:
                acqf = qLogNParEGO(
                    scalarization_weights=weights,
                    objective=IdentityMCMultiOutputObjective(
                        outcomes=list(range(surrogate.num_objectives))
                    ),
                    constraints=surrogate.constraints or None,
                    **noisy_baseline_kwargs(surrogate, settings.mc_samples, x_pend),
                )
            chosen.append(maximise(acqf, self.spec.dim, 1, settings))
        return torch.cat(chosen)

    def _boxed(
        self, surrogate: Surrogate, weights: Tensor, x_pending: Tensor | None
    ) -> qLogNoisyExpectedImprovement:
        """qLogNParEGO's acquisition (noisy log-EI of the scalarisation) in the reference box."""
        settings: QNParEGOSettings = self.settings  # type: ignore[assignment]
        m = surrogate.num_objectives
        ref = reference_point(surrogate, self.spec.ref_point)
        scalarise = get_chebyshev_scalarization(
            weights=weights, Y=torch.cat([surrogate.y_ok, ref.unsqueeze(0)])
        )
        box = [(lambda z, i=i: ref[i] - z[..., i]) for i in range(m)]
        return qLogNoisyExpectedImprovement(
            objective=GenericMCObjective(lambda z, X=None: scalarise(z[..., :m])),
            constraints=[*surrogate.constraints, *box],
            **noisy_baseline_kwargs(surrogate, settings.mc_samples, x_pending),
        )
