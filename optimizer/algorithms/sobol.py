"""Scrambled Sobol sampling: the baseline every search must beat. Ignores all feedback
(constraints and failures included), which is exactly its job."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from optimizer.core import Optimizer, Settings


@dataclass(frozen=True)
class SobolSettings(Settings):
    """Sobol sampling has no settings; the seed picks the scrambling."""


class SobolSampler(Optimizer):
    name = "sobol"
    settings_class = SobolSettings

    def _propose(self, q: int) -> np.ndarray:
        # The sequence is a function of the seed and the number of points asked so far, so it
        # needs no state of its own to resume.
        engine = qmc.Sobol(d=self.spec.dim, scramble=True, rng=np.random.default_rng(self.seed))
        if self.num_asked:
            engine.fast_forward(self.num_asked)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return engine.random(q)
