"""GARCH numbers checked against arch, against simulation, and against the closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from arch.univariate import GARCH, ConstantMean, Normal
from numpy.testing import assert_allclose
from scipy import stats

from volforecast.core.features import DailyData
from volforecast.jobs.cards import news_impact
from volforecast.models.garch import GarchModel


@pytest.mark.parametrize(
    ("vol", "dist", "o", "arch_vol"),
    [
        ("GARCH", "normal", 0, "GARCH"),
        ("GARCH", "t", 0, "GARCH"),
        ("GJR", "skewt", 1, "GARCH"),
        ("EGARCH", "t", 1, "EGARCH"),
    ],
)
def test_parameters_and_forecasts_equal_archs(
    gspc: DailyData, vol: str, dist: str, o: int, arch_vol: str
) -> None:
    data = gspc.head(3000)
    ours = GarchModel(vol, dist).fit(data)  # type: ignore[arg-type]
    theirs = arch_model(pd.Series(data.returns_pct), vol=arch_vol, p=1, o=o, q=1, dist=dist).fit(
        disp="off"
    )
    assert_allclose(list(ours.params.values()), theirs.params.to_numpy(), rtol=1e-6)
    horizon = 30 if vol != "EGARCH" else 1  # EGARCH beyond one step is simulated
    expected = theirs.forecast(horizon=horizon, reindex=False).variance.to_numpy()[-1]
    assert_allclose(ours.forecast(horizon).sigma2, expected, rtol=1e-8)


def test_egarch_multi_step_matches_archs_simulation(gspc: DailyData) -> None:
    model = GarchModel("EGARCH", "normal").fit(gspc.head(3000))
    ours = model.forecast(10).sigma2
    fixed = model.arch_model(gspc.head(3000).returns_pct).fix(list(model.params.values()))
    theirs = fixed.forecast(
        horizon=10, method="simulation", simulations=40_000, reindex=False
    ).variance.to_numpy()[-1]
    assert_allclose(ours, theirs, rtol=0.02)  # two Monte Carlo estimates of the same mean


def simulate_garch(omega: float, alpha: float, beta: float, n: int, seed: int) -> np.ndarray:
    model = ConstantMean(volatility=GARCH(1, 0, 1), distribution=Normal(seed=seed))
    return np.asarray(model.simulate([0.05, omega, alpha, beta], n)["data"].to_numpy())


def test_a_simulated_garch_gives_back_its_parameters() -> None:
    truth = {"omega": 0.05, "alpha[1]": 0.08, "beta[1]": 0.90}
    returns = simulate_garch(0.05, 0.08, 0.90, 8000, seed=42)
    dates = pd.bdate_range("1990-01-01", periods=len(returns))
    model = GarchModel().fit(pd.Series(returns, index=dates))
    assert model.fit_report.converged
    fitted = model.params
    assert fitted["alpha[1]"] == pytest.approx(truth["alpha[1]"], abs=0.02)
    assert fitted["beta[1]"] == pytest.approx(truth["beta[1]"], abs=0.03)
    assert fitted["mu"] == pytest.approx(0.05, abs=0.03)
    assert model.fit_report.persistence == pytest.approx(0.98, abs=0.015)


def test_forecasts_decay_geometrically_to_the_unconditional_variance(gspc: DailyData) -> None:
    model = GarchModel().fit(gspc.head(2300))  # ends in late 2008: far above the long-run level
    p = model.params
    persistence = p["alpha[1]"] + p["beta[1]"]
    long_run = p["omega"] / (1 - persistence)
    path = model.forecast(30).sigma2
    gaps = path - long_run
    assert gaps[0] > 0
    assert_allclose(gaps[1:] / gaps[:-1], persistence, rtol=1e-9)
    far = model._forecast_frame(model.data, 1000, len(model.data) - 1)[-1]
    assert far[-1] == pytest.approx(long_run, rel=1e-3)


def test_a_fit_that_fails_everywhere_is_reported_not_hidden(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force every optimiser run to stop after one iteration: nothing can converge.
    original = ConstantMean.fit

    def one_iteration(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["options"] = {"maxiter": 1}
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConstantMean, "fit", one_iteration)
    model = GarchModel().fit(gspc.head(1000))
    report = model.fit_report
    assert not report.converged
    assert report.attempts == 2  # the default start, then unit-variance rescaling
    assert "default start" in report.message
    assert "rescaled" in report.message
    assert model.forecast(5).sigma2.shape == (5,), "the best attempt still forecasts"


def test_a_refit_can_start_from_the_previous_parameters(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = GarchModel().fit(gspc.head(1000))
    original = ConstantMean.fit
    calls: list[object] = []

    def fail_the_default_start(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("starting_values"))
        if kwargs.get("starting_values") is None:
            kwargs["options"] = {"maxiter": 1}
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConstantMean, "fit", fail_the_default_start)
    model.fit(gspc.head(1100))
    assert model.fit_report.converged
    assert model.fit_report.attempts == 2
    assert calls[1] is not None, "the second attempt started from the previous parameters"


def test_persistence_and_bounds_are_read_from_the_parameters() -> None:
    gjr = GarchModel("GJR", "t")
    params = {
        "mu": 0.0,
        "omega": 0.01,
        "alpha[1]": 0.0,
        "gamma[1]": 0.2,
        "beta[1]": 0.85,
        "nu": 600.0,
    }
    assert gjr._persistence(params) == pytest.approx(0.95)
    assert gjr._on_bounds(params) == ("alpha[1]", "nu")


@pytest.mark.parametrize(("vol", "dist"), [("GARCH", "normal"), ("GJR", "t"), ("EGARCH", "skewt")])
def test_the_risk_recursion_is_the_fitted_one(gspc: DailyData, vol: str, dist: str) -> None:
    data = gspc.head(1500)
    model = GarchModel(vol, dist).fit(data)  # type: ignore[arg-type]
    n = len(data)
    before, after = model.forecast_paths(data, np.array([n - 2, n - 1]), 1)[:, 0]
    shock = data.returns_pct[n - 1] - model.params["mu"]
    recursion = model.variance_recursion()
    assert_allclose(recursion(np.array([before]), np.array([shock])), [after], rtol=1e-8)


def test_risk_shocks_are_the_residuals_or_the_fitted_distribution(gspc: DailyData) -> None:
    data = gspc.head(1500)
    normal = GarchModel("GARCH", "normal").fit(data)
    # Normal errors: filtered historical simulation on the returns over the fit's conditional
    # volatility (the mean is left in: a VaR is of the return, taken as zero-mean).
    residuals = arch_model(data.returns_pct, mean="Constant", vol="GARCH", p=1, q=1)
    fixed = residuals.fix(np.array(list(normal.params.values())))
    pool = normal.standardized_returns()
    expected = data.returns_pct / np.asarray(fixed.conditional_volatility)
    assert_allclose(pool, expected[-len(pool) :], rtol=1e-6)
    # Student-t errors: the fitted distribution's quantile, at unit variance.
    student = GarchModel("GJR", "t").fit(data)
    nu = student.params["nu"]
    var, es = student.tail_shocks().var_es(0.99)
    assert var == pytest.approx(-stats.t.ppf(0.01, nu) * np.sqrt((nu - 2) / nu), rel=1e-6)
    assert es > var
    # Its draws, made by NumPy's Student-t rather than the quantile of uniforms, are that
    # distribution: a Kolmogorov-Smirnov test against it does not reject.
    draws = student.tail_shocks().draw(np.random.default_rng(1), (20_000,))
    scaled = draws / np.sqrt((nu - 2) / nu)
    assert stats.kstest(scaled, stats.t(nu).cdf).pvalue > 0.01


@pytest.mark.parametrize("vol", ["GARCH", "GJR"])
def test_the_term_structure_is_archs_own_252_day_forecast(gspc: DailyData, vol: str) -> None:
    data = gspc.head(2000)
    model = GarchModel(vol).fit(data)  # type: ignore[arg-type]
    fixed = model.arch_model(data.returns_pct).fix(np.array(list(model.params.values())))
    path = np.asarray(fixed.forecast(horizon=252, reindex=False).variance)[-1]
    days = (1, 5, 22, 126, 252)
    expected = [np.sqrt(252 * path[:d].mean()) for d in days]
    structure = model.term_structure(days)
    assert_allclose(structure.vol_ann_pct, expected, rtol=1e-8)
    p = model.params
    persistence = p["alpha[1]"] + p.get("gamma[1]", 0.0) / 2 + p["beta[1]"]
    assert structure.persistence == pytest.approx(persistence)
    assert structure.long_run_sigma2 == pytest.approx(p["omega"] / (1 - persistence))
    assert structure.half_life_days == pytest.approx(np.log(0.5) / np.log(persistence))


@pytest.mark.parametrize("vol", ["GARCH", "GJR"])
def test_the_news_impact_curve_is_the_fitted_formula(gspc: DailyData, vol: str) -> None:
    model = GarchModel(vol, "t").fit(gspc.head(2000))  # type: ignore[arg-type]
    curve = news_impact(model)
    assert curve is not None
    p, shocks = model.params, np.array(curve.shock_pct)
    long_run = p["omega"] / (1 - p["alpha[1]"] - p.get("gamma[1]", 0.0) / 2 - p["beta[1]"])
    leverage = p.get("gamma[1]", 0.0) * (shocks < 0)
    expected = p["omega"] + (p["alpha[1]"] + leverage) * shocks**2 + p["beta[1]"] * long_run
    assert_allclose(curve.sigma2, expected, rtol=1e-10)
    # GJR answers a fall more than a rise of the same size; GARCH alike.
    down, up = np.array(curve.sigma2)[[0, -1]]
    assert (down > up) if vol == "GJR" else down == pytest.approx(up)


@pytest.mark.parametrize("dist", ["normal", "t", "skewt"])
def test_egarchs_long_run_is_where_its_own_simulated_path_settles(
    gspc: DailyData, dist: str
) -> None:
    model = GarchModel("EGARCH", dist).fit(gspc.head(3000))  # type: ignore[arg-type]
    first = model.forecast(1).sigma2
    settled = model._egarch_paths(first, 1500)[0, -300:].mean()
    assert model.long_run_sigma2() == pytest.approx(settled, rel=0.03)
