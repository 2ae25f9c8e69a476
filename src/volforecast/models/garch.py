"""GARCH-family models through ``arch``.

GARCH, GJR-GARCH and EGARCH with normal, Student-t or skewed-t errors, on percent returns
with a constant mean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from arch.univariate import EGARCH, GARCH, ConstantMean, Normal, SkewStudent, StudentsT

from volforecast.core.features import DailyData
from volforecast.core.tail_risk import (
    ParametricShocks,
    Recursion,
    Shocks,
    egarch_recursion,
    gjr_recursion,
)
from volforecast.models.base import VolatilityModel
from volforecast.models.fit_report import FitReport

GarchVol = Literal["GARCH", "GJR", "EGARCH"]
GarchDist = Literal["normal", "t", "skewt"]

_VOL_NAME = {"GARCH": "GARCH", "GJR": "GJR-GARCH", "EGARCH": "EGARCH"}
_DIST_SUFFIX = {"normal": "", "t": "-T", "skewt": "-SKEWT"}
_DISTRIBUTIONS: dict[str, Any] = {"normal": Normal, "t": StudentsT, "skewt": SkewStudent}
_TINY = 1e-6
_EGARCH_SIMULATIONS = 10_000
_LONG_RUN_QUANTILES = 5_000


@dataclass
class _Attempt:
    label: str
    params: pd.Series
    loglikelihood: float
    code: int
    message: str
    warnings: tuple[str, ...]
    converged: bool


class GarchModel(VolatilityModel):
    r"""GARCH(1,1) and its asymmetric variants, fitted by maximum likelihood in ``arch``.

    Parameters
    ----------
    vol : {"GARCH", "GJR", "EGARCH"}, default "GARCH"
        The variance recursion.
    dist : {"normal", "t", "skewt"}, default "normal"
        The distribution of standardised residuals.
    seed : int, default 0
        Seeds the simulations behind multi-step EGARCH forecasts (the only ones that are not
        analytic), so a forecast is the same every time it is made.

    Notes
    -----
    With :math:`\epsilon_t = r_t - \mu` and percent returns :math:`r_t`,

    .. math::
        \sigma^2_t = \omega + \alpha \epsilon^2_{t-1}
                     + \gamma \epsilon^2_{t-1} 1[\epsilon_{t-1} < 0] + \beta \sigma^2_{t-1}

    (:math:`\gamma = 0` for GARCH); EGARCH models :math:`\ln \sigma^2_t` instead. Multi-step
    forecasts of GARCH and GJR are analytic and converge to the unconditional variance
    :math:`\omega / (1 - \alpha - \gamma/2 - \beta)`.

    A fit is tried up to three times: from ``arch``'s starting values, from the previous fit's
    parameters (on a refit), and on returns rescaled to unit variance (parameters mapped back
    to percent units). The first attempt that converges is kept, else the one with the highest
    likelihood, marked not converged.

    References
    ----------
    .. [1] Bollerslev, T. (1986). Generalized autoregressive conditional heteroskedasticity.
       *Journal of Econometrics*, 31(3), 307–327.
    .. [2] Glosten, L. R., Jagannathan, R., & Runkle, D. E. (1993). On the relation between
       the expected value and the volatility of the nominal excess return on stocks.
       *Journal of Finance*, 48(5), 1779–1801.
    .. [3] Nelson, D. B. (1991). Conditional heteroskedasticity in asset returns: a new
       approach. *Econometrica*, 59(2), 347–370.
    """

    kind = "garch"
    min_obs = 100

    def __init__(self, vol: GarchVol = "GARCH", dist: GarchDist = "normal", seed: int = 0) -> None:
        super().__init__()
        for name, value, allowed in (("vol", vol, _VOL_NAME), ("dist", dist, _DIST_SUFFIX)):
            if value not in allowed:
                msg = f"{name} must be one of {', '.join(allowed)}, got {value!r}"
                raise ValueError(msg)
        self.vol: GarchVol = vol
        self.dist: GarchDist = dist
        self.seed = seed

    @property
    def model_type(self) -> str:
        """``GARCH``, ``GJR-GARCH-T``, ``EGARCH-SKEWT`` and so on."""
        return _VOL_NAME[self.vol] + _DIST_SUFFIX[self.dist]

    def arch_model(self, returns_pct: np.ndarray) -> Any:
        """The ``arch`` model of this specification on the given percent returns.

        Its distribution draws from a generator seeded with ``seed``, so simulated (EGARCH)
        forecasts repeat exactly.
        """
        distribution = _DISTRIBUTIONS[self.dist](seed=np.random.default_rng(self.seed))
        volatility = (
            EGARCH(p=1, o=1, q=1)
            if self.vol == "EGARCH"
            else GARCH(p=1, o=1 if self.vol == "GJR" else 0, q=1)
        )
        return ConstantMean(
            pd.Series(returns_pct), volatility=volatility, distribution=distribution, rescale=False
        )

    # ---------------------------------------------------------------- risk

    def tail_shocks(self, pool: np.ndarray | None = None) -> Shocks:
        """The shocks of this model's VaR and ES: its own tails.

        Normal errors: the fit's own standardized residuals (filtered historical simulation),
        or ``pool``; Student-t and skewed-t: the fitted distribution.
        """
        if self.dist == "normal":
            return super().tail_shocks(pool)
        p = self.params
        shape = np.array([p[n] for n in ("nu", "eta", "lambda") if n in p])
        distribution = _DISTRIBUTIONS[self.dist]()
        named = {"t": "fitted Student-t", "skewt": "fitted skewed Student-t"}[self.dist]
        nu = float(shape[0])
        scale = math.sqrt((nu - 2.0) / nu)

        def student_t(rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
            # arch's standardized t: Student's t scaled to unit variance.
            return np.asarray(rng.standard_t(nu, size) * scale)

        sampler = student_t if self.dist == "t" else None
        return ParametricShocks(lambda u: np.asarray(distribution.ppf(u, shape)), named, sampler)

    def variance_recursion(self) -> Recursion:
        """The fitted recursion: each simulated shock feeds the next day's variance."""
        p = self.params
        if self.vol == "EGARCH":
            return egarch_recursion(p["omega"], p["alpha[1]"], p["gamma[1]"], p["beta[1]"])
        return gjr_recursion(p["omega"], p["alpha[1]"], p.get("gamma[1]", 0.0), p["beta[1]"])

    # ---------------------------------------------------------------- term structure

    def long_run_sigma2(self) -> float:
        r"""The unconditional variance of the fitted parameters, percent² a day.

        Notes
        -----
        GARCH and GJR: :math:`\omega / (1 - \alpha - \gamma/2 - \beta)`. EGARCH, whose
        stationary :math:`\ln\sigma^2 = \omega/(1-\beta) + \sum_{i\ge0}\beta^i s_i` with
        :math:`s = \alpha(|z| - \sqrt{2/\pi}) + \gamma z`:
        :math:`E\sigma^2 = e^{\omega/(1-\beta)} \prod_{i\ge0} E[e^{\beta^i s}]`, each mean
        taken over evenly spaced quantiles of the fitted distribution: random draws reused
        for every term would multiply their own error in the mean of :math:`s` by
        :math:`1/(1-\beta)`. A fit that is not stationary has none: the mean of the proxy
        over its data stands in.
        """
        p, persistence = self.params, self._persistence(self.params)
        if persistence is None or not 0.0 <= persistence < 1.0:
            return super().long_run_sigma2()
        if self.vol != "EGARCH":
            return p["omega"] / (1.0 - persistence)
        shape = np.array([p[n] for n in ("nu", "eta", "lambda") if n in p])
        quantiles = (np.arange(_LONG_RUN_QUANTILES) + 0.5) / _LONG_RUN_QUANTILES
        z = np.asarray(_DISTRIBUTIONS[self.dist]().ppf(quantiles, shape if len(shape) else None))
        s = p["alpha[1]"] * (np.abs(z) - math.sqrt(2.0 / math.pi)) + p["gamma[1]"] * z
        terms = int(math.log(1e-12) / math.log(persistence)) + 1 if persistence > 0 else 1
        log_means = [math.log(np.mean(np.exp(persistence**i * s))) for i in range(terms)]
        return math.exp(p["omega"] / (1.0 - persistence) + math.fsum(log_means))

    def term_persistence(self, sigma2_path: np.ndarray, long_run_sigma2: float) -> float:
        """GARCH and GJR: the fitted persistence, with which their own path decays."""
        persistence = self._persistence(self.params)
        if self.vol == "EGARCH" or persistence is None or persistence >= 1.0:
            return super().term_persistence(sigma2_path, long_run_sigma2)
        return persistence

    # ---------------------------------------------------------------- fitting

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        returns = data.returns_pct
        previous = self._fitted.params if self._fitted is not None else None
        attempts: list[_Attempt] = []
        plans: list[tuple[str, float, dict[str, float] | None]] = [("default start", 1.0, None)]
        if previous:
            plans.append(("previous parameters", 1.0, previous))
        plans.append(("rescaled to unit variance", 1.0 / float(np.std(returns)), None))
        for label, scale, start in plans:
            attempt = self._attempt(label, returns, scale, start)
            attempts.append(attempt)
            if attempt.converged:
                break
        kept = next((a for a in attempts if a.converged), None) or max(
            attempts, key=lambda a: a.loglikelihood if math.isfinite(a.loglikelihood) else -np.inf
        )
        params = {str(k): float(v) for k, v in kept.params.items()}
        persistence = self._persistence(params)
        failures = [f"{a.label}: {a.message}" for a in attempts if not a.converged]
        report = FitReport(
            converged=kept.converged,
            optimizer_code=kept.code,
            message=kept.message if kept.converged else "; ".join(failures),
            params_on_bounds=self._on_bounds(params),
            persistence=persistence,
            warnings=tuple(w for a in attempts for w in a.warnings),
            attempts=len(attempts),
            nobs=len(data),
        )
        return params, report

    def _attempt(
        self, label: str, returns: np.ndarray, scale: float, start: dict[str, float] | None
    ) -> _Attempt:
        model = self.arch_model(returns * scale)
        # A previous fit of this same specification lists its parameters in arch's order.
        starting = None if start is None else np.array(list(start.values()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model.fit(
                    disp="off",
                    starting_values=starting,
                    options={"maxiter": 1000},
                    show_warning=True,
                )
            except (ValueError, np.linalg.LinAlgError) as exc:
                return _Attempt(label, pd.Series(dtype=float), -math.inf, -1, str(exc), (), False)
        params = self._unscale(result.params, scale)
        code = int(result.convergence_flag)
        message = str(getattr(result.optimization_result, "message", ""))
        usable = bool(np.isfinite(params.to_numpy()).all())
        persistence = self._persistence({str(k): float(v) for k, v in params.items()})
        stationary = persistence is not None and persistence < 1.0
        converged = code == 0 and usable and stationary
        if code == 0 and not stationary:
            message = f"persistence {persistence:.4f} is not below 1 (non-stationary)"
        notes = tuple(f"{label}: {type(w.message).__name__}: {w.message}" for w in caught)
        return _Attempt(label, params, float(result.loglikelihood), code, message, notes, converged)

    def _unscale(self, params: pd.Series, scale: float) -> pd.Series:
        """Map parameters fitted on ``scale * returns`` back to percent-return units."""
        if scale == 1.0:
            return params
        out = params.copy()
        out["mu"] = params["mu"] / scale
        if self.vol == "EGARCH":
            out["omega"] = params["omega"] - (1.0 - params["beta[1]"]) * math.log(scale**2)
        else:
            out["omega"] = params["omega"] / scale**2
        return out

    def _persistence(self, params: dict[str, float]) -> float | None:
        if not params:
            return None
        if self.vol == "EGARCH":
            return params["beta[1]"]
        # Half of the negative shocks hit gamma: exact for symmetric errors, near for skewed.
        return params["alpha[1]"] + params.get("gamma[1]", 0.0) / 2.0 + params["beta[1]"]

    def _on_bounds(self, params: dict[str, float]) -> tuple[str, ...]:
        hits = []
        if self.vol != "EGARCH":
            hits += [
                n for n in ("alpha[1]", "gamma[1]", "beta[1]") if 0 <= params.get(n, 1) < _TINY
            ]
        if "nu" in params and not 2.05 + 1e-3 < params["nu"] < 499.0:
            hits.append("nu")
        if "eta" in params and not 2.05 + 1e-3 < params["eta"] < 299.0:
            hits.append("eta")
        if "lambda" in params and abs(params["lambda"]) > 0.999:
            hits.append("lambda")
        return tuple(hits)

    # ---------------------------------------------------------------- forecasting

    def _forecast_frame(self, data: DailyData, horizon: int, start: int) -> np.ndarray:
        fixed = self.arch_model(data.returns_pct).fix(np.array(list(self.params.values())))
        analytic = 1 if self.vol == "EGARCH" else horizon
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            frame = fixed.forecast(horizon=analytic, start=start, reindex=False)
        variance = np.asarray(frame.variance.to_numpy(), dtype=np.float64)
        if analytic == horizon:
            return variance
        return self._egarch_paths(variance[:, 0], horizon)

    def _egarch_paths(self, sigma2_next: np.ndarray, horizon: int) -> np.ndarray:
        r"""Multi-step EGARCH forecasts by simulation with common random numbers.

        EGARCH has no closed form beyond one step. From each origin's one-step variance,
        :math:`\ln\sigma^2_{k+1} = \omega + \alpha(|z_k| - \sqrt{2/\pi}) + \gamma z_k
        + \beta \ln\sigma^2_k` is iterated over the same seeded draws of the fitted
        standardised distribution for every origin, and the forecast is the mean of
        :math:`\sigma^2` across draws. The same draws make a path depend on its origin's
        data alone, and make it repeat exactly.
        """
        p = self.params
        distribution = _DISTRIBUTIONS[self.dist](seed=np.random.default_rng(self.seed))
        shape = [p[n] for n in ("nu", "eta", "lambda") if n in p]
        draws = distribution.simulate(shape)((_EGARCH_SIMULATIONS, horizon - 1))
        shocks = p["alpha[1]"] * (np.abs(draws) - math.sqrt(2.0 / math.pi)) + p["gamma[1]"] * draws
        log_sigma2 = np.repeat(np.log(sigma2_next)[:, None], _EGARCH_SIMULATIONS, axis=1)
        paths = np.empty((len(sigma2_next), horizon))
        paths[:, 0] = sigma2_next
        for k in range(horizon - 1):
            log_sigma2 = p["omega"] + shocks[:, k] + p["beta[1]"] * log_sigma2
            paths[:, k + 1] = np.exp(log_sigma2).mean(axis=1)
        return paths

    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        if len(origins) == 0:
            return np.empty((0, horizon))
        first = int(origins.min())
        # arch filters the whole sample once with the frozen parameters; row k holds the path
        # made at position first + k from the returns up to that position only.
        frame = self._forecast_frame(data.head(int(origins.max()) + 1), horizon, first)
        return np.asarray(frame[origins - first])
