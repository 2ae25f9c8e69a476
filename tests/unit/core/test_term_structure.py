"""The term structure to a year: decay measured, paths carried home, V-Lab's annualising."""

from __future__ import annotations

import math

import numpy as np
import pytest

from volforecast.core.term_structure import (
    MAX_PERSISTENCE,
    annualized_vol_pct,
    decay_persistence,
    extend_path,
    half_life_days,
)

LONG_RUN = 2.0


def geometric(start: float, phi: float, steps: int = 30) -> np.ndarray:
    return LONG_RUN + (start - LONG_RUN) * phi ** np.arange(steps)


@pytest.mark.parametrize("start", [6.0, 0.5])
@pytest.mark.parametrize("phi", [0.5, 0.9, 0.98])
def test_a_geometric_paths_persistence_is_recovered_from_above_and_below(
    start: float, phi: float
) -> None:
    assert decay_persistence(geometric(start, phi), LONG_RUN) == pytest.approx(phi, rel=1e-9)


def test_a_path_that_does_not_come_home_is_given_the_slowest_decay_allowed() -> None:
    away = LONG_RUN + 0.1 * 1.01 ** np.arange(30)
    assert decay_persistence(away, LONG_RUN) == MAX_PERSISTENCE
    assert decay_persistence(np.full(30, LONG_RUN), LONG_RUN) == MAX_PERSISTENCE
    # A path that jumps across the long-run level at once has no distance left to decay.
    assert decay_persistence([4.0, 1.0, 1.5], LONG_RUN) == 0.0


def test_a_path_is_carried_home_at_its_persistence() -> None:
    path = geometric(6.0, 0.9)
    full = extend_path(path, LONG_RUN, 0.9, 252)
    assert len(full) == 252
    np.testing.assert_allclose(full, geometric(6.0, 0.9, 252), rtol=1e-12)
    assert full[-1] == pytest.approx(LONG_RUN, rel=1e-9)
    np.testing.assert_array_equal(extend_path(full, LONG_RUN, 0.9, 30), full[:30])
    with pytest.raises(ValueError, match="persistence in"):
        extend_path(path, LONG_RUN, 1.0)
    with pytest.raises(ValueError, match="positive"):
        extend_path(path, 0.0, 0.5)


def test_annualised_volatility_is_v_labs_mean_variance_over_the_horizon() -> None:
    assert annualized_vol_pct(np.ones(252)) == pytest.approx(np.full(5, math.sqrt(252)))
    vol = annualized_vol_pct(np.array([1.0, 3.0, 2.0]), days=[1, 2, 3])
    assert vol == pytest.approx([math.sqrt(252), math.sqrt(252 * 2), math.sqrt(252 * 2)])
    with pytest.raises(ValueError, match="within the path"):
        annualized_vol_pct(np.ones(30))


def test_half_life() -> None:
    assert half_life_days(0.5) == pytest.approx(1.0)
    assert half_life_days(0.99) == pytest.approx(68.97, rel=1e-3)
    assert half_life_days(1.0) == math.inf
    assert half_life_days(0.0) == 0.0
