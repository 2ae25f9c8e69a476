"""Domain exceptions.

Every error a user can cause or meet is one of these. The CLI maps them to exit codes in
one place (``cli/__init__.py``); the API maps them to HTTP status codes in one place
(``api/errors.py``).
"""

from __future__ import annotations


class VolforecastError(Exception):
    """Base class of every error volforecast raises on purpose."""


class ConfigurationError(VolforecastError, ValueError):
    """A setting or option that cannot work: an unknown model, an empty or reversed period.

    A ``ValueError`` too, so that code catching bad values as such keeps catching it.
    """


class DataSourceError(VolforecastError):
    """A price source cannot be read: missing file, unknown layout, no network, missing package."""


class DatabaseUnavailableError(VolforecastError):
    """The database cannot be reached or refused the connection."""


class UnknownTickerError(VolforecastError):
    """A ticker was asked for that the database does not hold."""


class InvalidSeriesError(VolforecastError):
    """A price or return series a model cannot use: NaN, infinite or constant values."""


class InsufficientDataError(InvalidSeriesError):
    """A series is too short for the model asked of it."""


class ModelNotFittedError(VolforecastError):
    """A model was asked to forecast, update or save before it was fitted."""


class TrackingUnavailableError(VolforecastError):
    """The MLflow tracking server cannot be reached, even after retrying."""


class RegistryError(VolforecastError):
    """A registry request that cannot be carried out: no such model, version or earlier version."""


class WorkerLostError(VolforecastError):
    """A worker process of a job ended abruptly (killed, or out of memory)."""


class ModelFilesMissingError(VolforecastError, FileNotFoundError):
    """A registered version's files are not where the registry says (deleted, or not moved)."""


class ModelNotFoundError(VolforecastError):
    """No production model serves the asked-for ticker and model type (train one first)."""


class UnknownModelTypeError(VolforecastError):
    """A model type volforecast does not ship."""


class IncompleteRequestError(VolforecastError):
    """A request that lacks what its target needs (a pooled model's card asks for a ticker)."""


class JournalError(VolforecastError):
    """A prediction journal file cannot be read back: cut short, or edited by hand."""


class StalePricesError(VolforecastError):
    """The last stored close is older than the NYSE session a run is for (load newer prices)."""
