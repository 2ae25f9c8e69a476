"""The accuracy benchmark's risk figures: the overlap-corrected test and the targets."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from _risk import risk_targets, ten_day_rejected


def test_overlapping_ten_day_windows_are_tested_on_every_tenth() -> None:
    # Ten-day windows stepping a day share nine days: a run of exceedances is one event seen
    # up to ten times. A binomial test of them all rejects a right VaR far more than 5 %.
    rng = np.random.default_rng(0)
    naive, corrected = [], []
    for _ in range(400):
        daily = rng.standard_normal(760)
        sums = np.convolve(daily, np.ones(10), mode="valid")
        hits = sums < -2.326 * np.sqrt(10)  # the true 99 % ten-day VaR
        z = (hits.mean() - 0.01) / np.sqrt(0.01 * 0.99 / len(hits))
        naive.append(abs(z) > 1.96)
        corrected.append(ten_day_rejected(hits))
    assert np.mean(naive) > 0.2
    assert np.mean(corrected) < 0.08
    # A VaR breached five times too often is still found.
    breached = np.zeros(750, dtype=bool)
    breached[::20] = True
    assert ten_day_rejected(breached) == 1.0


def test_each_target_holds_within_its_bounds() -> None:
    row = {f"rate {q:.1%}": 100 * (1 - q) for q in (0.95, 0.975, 0.99)}
    row |= {f"{test} {q:.1%}": 0.0 for test in ("kupiec", "cc") for q in (0.95, 0.975, 0.99)}
    row |= {"rate 10 d 99%": 1.0, "z2 rejected": 0.0, "fz0 diff": -0.1}
    table = pd.DataFrame([{"method": "served", **row}] * 10)
    assert all(t.met for t in risk_targets(table, "served"))
    table.loc[:2, "kupiec 99.0%"] = 1.0  # three tickers in ten rejected: over 8 %
    failed = [t.what for t in risk_targets(table, "served") if not t.met]
    assert failed == ["1 d 99.0% Kupiec rejects, share"]
    table["rate 95.0%"] = 6.5  # above 1.25 times 5 %
    assert pytest.approx(6.5) in [t.value for t in risk_targets(table, "served") if not t.met]
