from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.core import Observation, OptimizerError
from optimizer.hypervolume import HypervolumeIndicator, hypervolume, pareto_mask


def test_two_dimensional_staircase() -> None:
    # Union of [1,4]x[3,4], [2,4]x[2,4], [3,4]x[1,4]: columns of height 1, 2 and 3.
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), [4, 4]) == pytest.approx(6.0)


def test_three_dimensional_boxes_with_overlap() -> None:
    assert hypervolume(np.array([[0, 0, 0]]), [1, 2, 3]) == pytest.approx(6.0)
    # 2*2*1 + 1*1*2 - overlap 1*1*1
    assert hypervolume(np.array([[0, 0, 1], [1, 1, 0]]), [2, 2, 2]) == pytest.approx(5.0)


def test_dominated_duplicate_and_outside_points_add_nothing() -> None:
    base = hypervolume(np.array([[1, 3], [2, 2], [3, 1]]), [4, 4])
    more = np.array([[1, 3], [2, 2], [3, 1], [2, 2], [3, 3], [0.5, 5], [5, 0.5]])
    assert hypervolume(more, [4, 4]) == pytest.approx(base)
    assert hypervolume(np.empty((0, 2)), [4, 4]) == 0.0


def test_dtlz2_front_approaches_known_volume() -> None:
    # DTLZ2's front is the positive unit sphere octant: HV = 1.1^3 - pi/6 with ref 1.1.
    grid = np.linspace(0, math.pi / 2, 20)
    a, b = np.meshgrid(grid, grid)
    front = np.stack([np.cos(a) * np.cos(b), np.cos(a) * np.sin(b), np.sin(a)], axis=-1).reshape(
        -1, 3
    )
    exact = 1.1**3 - math.pi / 6
    value = hypervolume(front, [1.1, 1.1, 1.1])
    # A 20 x 20 grid of the front misses the volume between its points: about 4 %.
    assert 0.95 * exact < value < exact


def test_pareto_mask() -> None:
    points = np.array([[1, 2], [2, 1], [2, 2], [1, 2]])
    assert pareto_mask(points).tolist() == [True, True, False, False]


def test_normalised_indicator_counts_only_feasible_successes() -> None:
    indicator = HypervolumeIndicator(ideal=[0, 0], ref_point=[2, 4])
    good = Observation.success([0.1], [1, 2], [-1])  # normalised (0.5, 0.5): volume 0.25
    infeasible = Observation.success([0.2], [0, 0], [0.5])
    failed = Observation.failure([0.3], "diverged")
    assert indicator([good, infeasible, failed]) == pytest.approx(0.25)
    history = indicator.history([infeasible, good, failed])
    assert history == pytest.approx([0.0, 0.25, 0.25])


def test_reference_point_must_be_worse_than_ideal() -> None:
    with pytest.raises(OptimizerError, match="worse than the ideal"):
        HypervolumeIndicator(ideal=[0, 0], ref_point=[1, 0])
