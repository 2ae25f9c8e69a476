"""The pooled LSTM's fitted panel: one network, a forecaster per ticker, saved once."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from volforecast.core.features import SEASON_MEMORY, DailyData
from volforecast.models.base import VolatilityModel
from volforecast.models.fit_report import FitReport
from volforecast.models.lstm.config import LstmConfig
from volforecast.models.lstm.model import WEIGHTS_FILE, LstmModel
from volforecast.models.lstm.network import LstmNetwork, Normalizer
from volforecast.models.lstm.training import TrainingResult
from volforecast.models.panel import PANEL_FILE, FittedPanel

POOLED_DATA_FILE = "pooled_data.npz"


@dataclass
class LstmPanel(FittedPanel):
    """What :meth:`LstmModel.fit_panel` trained: every ticker's forecaster shares ``training``."""

    training: TrainingResult = field(kw_only=True)
    """The network, its settings, the per-ticker normalisers and the loss history."""

    @classmethod
    def of_training(cls, result: TrainingResult, datasets: Sequence[DailyData]) -> LstmPanel:
        """A forecaster per trained ticker, each at the end of its data."""
        models: dict[str, VolatilityModel] = {
            d.ticker: LstmModel.attached(result, i, d) for i, d in enumerate(datasets)
        }
        return cls(models, history=result.history, training=result)

    def save(self, path: Path, *, keep_days: int = 60) -> Path:
        """Write every ticker's forecaster to ``path``, the weights once.

        :meth:`VolatilityModel.save` on each ticker would write the network ~400 times. Here it
        is written once, with each ticker's normaliser and embedding index, and the last
        ``keep_days`` days of each ticker's data, or more where a forecast from the stored
        origin needs more (the last ``seq_len``, and with the season terms the last
        :data:`~volforecast.core.features.SEASON_MEMORY`); :meth:`VolatilityModel.update`
        brings in newer days.
        """
        models = {t: m for t, m in self.models.items() if isinstance(m, LstmModel)}
        if not models or len(models) != len(self.models):
            msg = "no models to save" if not self.models else "a pooled panel holds LSTMs only"
            raise ValueError(msg)
        first = next(iter(models.values()))
        if any(m.network is not first.network for m in models.values()):
            msg = "a pooled panel saves models that share one network (from one fit_panel)"
            raise ValueError(msg)
        config = first.config
        keep = max(keep_days, config.seq_len, SEASON_MEMORY if config.seasonal else 0)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(first.network.state_dict(), path / WEIGHTS_FILE)
        arrays: dict[str, np.ndarray] = {}
        for i, model in enumerate(models.values()):
            arrays |= model.data.tail(keep).to_arrays(suffix=f"_{i}")
        np.savez_compressed(path / POOLED_DATA_FILE, **arrays)  # type: ignore[arg-type]
        payload = {
            "kind": LstmModel.kind,
            "config": asdict(config),
            "version": first.version,
            "n_tickers": first.network.embedding.num_embeddings,
            "history": first.history,
            "fit_report": first.fit_report.to_dict(),
            "tickers": {
                t: {
                    "index": m.ticker_index,
                    "normalizer": asdict(m.normalizer),
                    "long_run_sigma2": m.long_run_sigma2(),
                }
                for t, m in models.items()
            },
        }
        (path / PANEL_FILE).write_text(json.dumps(payload, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> LstmPanel:
        """The panel :meth:`save` wrote, every forecaster sharing one network."""
        payload = json.loads((path / PANEL_FILE).read_text())
        # Pools saved before the market input or the season terms existed had none.
        config = LstmConfig(**{"market": False, "seasonal": False, **payload["config"]})
        network = LstmNetwork(int(payload["n_tickers"]), config)
        network.load_state_dict(torch.load(path / WEIGHTS_FILE, weights_only=True))
        entries = payload["tickers"]
        result = TrainingResult(
            network=network.eval(),
            config=config,
            normalizers={t: Normalizer(**e["normalizer"]) for t, e in entries.items()},
            tickers=list(entries),
            report=FitReport.from_dict(payload["fit_report"]),
            history=[(float(a), float(b)) for a, b in payload["history"]],
            test_loss=math.nan,
            seconds=0.0,
        )
        models: dict[str, VolatilityModel] = {}
        with np.load(path / POOLED_DATA_FILE) as arrays:
            for i, (ticker, entry) in enumerate(entries.items()):
                data = DailyData.from_arrays(ticker, arrays, suffix=f"_{i}")
                # Kept since the term structure: the saved tail is not the fitted data.
                long_run = entry.get("long_run_sigma2")
                model = LstmModel.attached(result, int(entry["index"]), data, long_run)
                model.version = str(payload["version"])
                models[ticker] = model
        return cls(models, history=result.history, training=result)
