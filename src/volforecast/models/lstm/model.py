"""The LSTM behind the :class:`~volforecast.models.base.VolatilityModel` contract.

One network serves every ticker it was trained on (a pooled model): each ticker's inputs are
standardised with its own training-period statistics and it has a learned embedding, so the
network shares what volatility dynamics have in common and still tells tickers apart. Training
400 tickers therefore costs one training run, not 400 (:meth:`LstmModel.fit_panel`). A
single-ticker fit (:meth:`LstmModel.fit`) is the same machinery with one ticker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from volforecast.core.features import DailyData, season_peaks, seasonal_regressors
from volforecast.models.base import MAX_HORIZON, VolatilityModel
from volforecast.models.fit_report import FitReport
from volforecast.models.lstm.config import LstmConfig
from volforecast.models.lstm.network import LstmNetwork, Normalizer
from volforecast.models.lstm.training import EpochCallback, TrainingResult, train_lstm

if TYPE_CHECKING:
    from volforecast.models.lstm.panel import LstmPanel
    from volforecast.models.panel import FittedPanel

WEIGHTS_FILE = "lstm.pt"


class LstmModel(VolatilityModel):
    """The LSTM behind the :class:`VolatilityModel` contract, for one ticker.

    Parameters
    ----------
    **settings
        Fields of :class:`LstmConfig`.

    Notes
    -----
    Inputs per day are the percent return and the log of the range-based realized variance,
    each standardised with the ticker's training-period moments, plus a learned ticker
    embedding. The head outputs the standardised log variance of each of the next 30 days at
    once (a direct multi-output forecast, no feedback of its own predictions), trained with
    QLIKE against the range-based realized variance of those days, so the exponentiated
    output estimates the conditional variance rather than its median. With the defaults it
    also reads the market's log range variance each day (``market``) and adds HAR's
    earnings-season terms of each day it forecasts to that day's output (``seasonal``).
    :meth:`fit_panel` trains one network for many tickers.
    """

    kind = "lstm"
    min_obs = 200

    def __init__(self, **settings: Any) -> None:
        super().__init__()
        self.config = LstmConfig(**settings)
        # A fit on data without the market series turns config.market off; the next fit still
        # asks for the input.
        self._market_asked = self.config.market
        self._network: LstmNetwork | None = None
        self._ticker_index = 0
        self._normalizer: Normalizer | None = None
        self._history: list[tuple[float, float]] = []

    @property
    def options(self) -> dict[str, Any]:
        """The configuration."""
        return asdict(self.config)

    @property
    def history(self) -> list[tuple[float, float]]:
        """(train, validation) QLIKE per epoch of the run that trained the network."""
        return list(self._history)

    @classmethod
    def fit_panel(
        cls,
        datasets: Sequence[DailyData],
        *,
        warm_start: FittedPanel | None = None,
        on_epoch: EpochCallback | None = None,
        **settings: Any,
    ) -> LstmPanel:
        """Train one network on all ``datasets``; a panel of one forecaster per ticker.

        ``warm_start`` continues from the network of an earlier panel of the same tickers,
        ``on_epoch`` hears each epoch (see :func:`train_lstm`).
        """
        from volforecast.models.lstm.panel import LstmPanel  # noqa: PLC0415  (circular)

        config = LstmConfig(**settings)
        for data in datasets:
            cls()._check(data)
        earlier = next(iter(warm_start.models.values()), None) if warm_start else None
        network = earlier.network if isinstance(earlier, LstmModel) else None
        result = train_lstm(datasets, config, network, on_epoch=on_epoch)
        return LstmPanel.of_training(result, datasets)

    @classmethod
    def load_panel(cls, path: Path) -> LstmPanel:
        """The panel :meth:`LstmPanel.save` wrote to ``path``, one network for every ticker."""
        from volforecast.models.lstm.panel import LstmPanel  # noqa: PLC0415  (circular)

        return LstmPanel.load(path)

    @classmethod
    def attached(
        cls,
        result: TrainingResult,
        index: int,
        data: DailyData,
        long_run_sigma2: float | None = None,
    ) -> LstmModel:
        """The forecaster of the network's ticker ``index``, at the end of ``data``.

        ``long_run_sigma2``: the one kept from training, when ``data`` is only its tail.
        """
        model = cls(**asdict(result.config))
        model._attach(result, index, data.ticker)
        model._set_fitted(data, model._params(), result.report, long_run_sigma2)
        return model

    def _attach(self, result: TrainingResult, index: int, ticker: str) -> None:
        self._network = result.network
        self._ticker_index = index
        self._normalizer = result.normalizers[ticker]
        self._history = result.history

    @property
    def ticker_index(self) -> int:
        """Row of this ticker's embedding in the network."""
        return self._ticker_index

    @property
    def normalizer(self) -> Normalizer:
        """The ticker's input statistics, from its training period."""
        if self._normalizer is None:
            msg = "the LSTM has no normaliser; fit or load it first"
            raise RuntimeError(msg)
        return self._normalizer

    def _params(self) -> dict[str, float]:
        return {f"normalizer.{k}": v for k, v in asdict(self.normalizer).items()} | {
            "ticker_index": float(self._ticker_index)
        }

    def _fit(self, data: DailyData) -> tuple[dict[str, float], FitReport]:
        result = train_lstm([data], replace(self.config, market=self._market_asked))
        self.config = result.config
        self._attach(result, 0, data.ticker)
        return self._params(), result.report

    @property
    def network(self) -> LstmNetwork:
        """The (possibly shared) network; a warm start for the next training run."""
        if self._network is None:
            msg = "the LSTM has no network; fit or load it first"
            raise RuntimeError(msg)
        return self._network

    @torch.no_grad()
    def _forecast_paths(self, data: DailyData, origins: np.ndarray, horizon: int) -> np.ndarray:
        n, seq = self.normalizer, self.config.seq_len
        if int(origins.min()) < seq - 1:
            msg = f"the LSTM needs {seq} days of history before a forecast origin"
            raise ValueError(msg)
        history = data.head(int(origins.max()) + 1)
        features = torch.from_numpy(n.features(history, market=self.config.market))
        windows = features[torch.from_numpy(origins)[:, None] + torch.arange(-seq + 1, 1)]
        ids = torch.full((len(origins),), self._ticker_index, dtype=torch.long)
        season = None
        if self.config.seasonal:
            targets = origins[:, None] + np.arange(1, MAX_HORIZON + 1)
            peaks = seasonal_regressors(season_peaks(history), targets) / n.log_rv_std
            season = torch.from_numpy(peaks.astype(np.float32))
        network = self.network.eval()
        outputs = []
        for i in range(0, len(origins), 8192):
            part = slice(i, i + 8192)
            season_part = None if season is None else season[part]
            outputs.append(network(windows[part], ids[part], season_part))
        log_sigma2 = torch.cat(outputs).double().numpy()[:, :horizon]
        return np.exp(log_sigma2 * n.log_rv_std + n.log_rv_mean)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "n_tickers": self.network.embedding.num_embeddings,
            "history": self._history,
            "market": self.config.market,
            "seasonal": self.config.seasonal,
        }

    def _save_files(self, path: Path) -> None:
        torch.save(self.network.state_dict(), path / WEIGHTS_FILE)

    def _restore(self, extra: dict[str, Any], path: Path) -> None:
        # Models saved before the market input or the season terms existed had none.
        self.config = replace(
            self.config,
            market=bool(extra.get("market", False)),
            seasonal=bool(extra.get("seasonal", False)),
        )
        network = LstmNetwork(int(extra["n_tickers"]), self.config)
        network.load_state_dict(torch.load(path / WEIGHTS_FILE, weights_only=True))
        self._network = network.eval()
        params = self.params
        self._ticker_index = int(params["ticker_index"])
        self._normalizer = Normalizer(
            **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("normalizer.")}
        )
        self._history = [(float(a), float(b)) for a, b in extra.get("history", [])]
