"""The LSTM's settings, apart from torch so that the CLI's help and the backtest read them cheaply.

:class:`LstmConfig` is the one set of defaults that ``volforecast train``, ``volforecast
backtest``, the training DAG and the benchmarks use; each can override a field, none carries
its own copy.
"""

from __future__ import annotations

from dataclasses import dataclass

N_FEATURES = 2  # standardised return and log realized variance; LstmConfig.market adds one


@dataclass(frozen=True)
class LstmConfig:
    """Architecture and training settings.

    The architecture and the optimizer are the specification's (2 layers of 64 units, dropout
    0.2, 20-day windows, Adam at 0.001). Batch, stride and the epoch limits are chosen so that
    a 2-core CPU trains the pooled network on every shared ticker in minutes: a batch of 32
    over every window is forty times the optimizer steps of batches of 256 over every fifth
    window, and patience 10 ran 46 epochs for no better test loss than patience 5 did in 12
    (see ``docs/models/lstm.md``). ``max_epochs`` bounds the worst case.
    """

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.2
    seq_len: int = 20
    learning_rate: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 20
    """At most this many epochs from scratch; early stopping usually ends training sooner."""
    patience: int = 5
    """Epochs without a better validation loss before training stops."""
    train_fraction: float = 0.8
    validation_fraction: float = 0.1
    embedding_dim: int = 4
    stride: int = 5
    """Every ``stride``-th training and validation window is used; consecutive windows share
    19 of 20 days, so a stride of 5 loses little and costs a fifth."""
    seed: int = 0
    device: str = "auto"
    cpu_threads: int = 1
    """Threads of a training on the CPU. A 64-unit LSTM in batches of 256 gains little from
    a second thread, and where other work shares the cores the threads wait on each other:
    a training step took 230-400 ms with two threads and 24-35 ms with one on the busy
    2-core machine (see ``docs/models/lstm.md``). The training job, whose pooled stage has
    the cores to itself, sets it to its number of workers unless it is given."""
    market: bool = True
    """Add the market's standardised log range variance as a third input (as HAR's market
    term, :class:`~volforecast.models.baselines.HarModel`). A run whose data comes without
    the market series trains without it, and its config then says ``market=False``."""
    seasonal: bool = True
    """Add, to each day's output, HAR's earnings-season terms of that day (its largest
    abnormal log range variance one to four quarters back; see
    :class:`~volforecast.models.baselines.HarModel`), weighted per day ahead. Twenty days of
    inputs cannot see last quarter's report; these terms tell the network when the next is
    due. LSTMs saved before the option existed load without them."""

    @property
    def n_inputs(self) -> int:
        """Inputs per day, the ticker embedding aside."""
        return N_FEATURES + int(self.market)


@dataclass(frozen=True)
class WarmStartLimits:
    """Epoch limits of a training run that starts from an earlier network's weights."""

    max_epochs: int
    patience: int


WEEKLY_RETRAIN = WarmStartLimits(max_epochs=5, patience=2)
"""The weekly retrain fine-tunes production's network on a week more data: a few epochs."""
BACKTEST_REFIT = WarmStartLimits(max_epochs=1, patience=1)
"""A walk-forward refit adds a month of data to the previous block's network: one epoch.
Forty-eight blocks over 2015-2018 at five epochs each would take the backtest of the shared
tickers past an hour on two cores; one epoch gave the figures of ``docs/results/accuracy.md``."""
