"""How a model's fit went: what training logs, tags and refuses to promote on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FitReport:
    """How a fit went."""

    converged: bool
    """The optimiser reported success and the parameters are usable (finite, stationary).
    A model whose fit did not converge is never promoted."""
    optimizer_code: int | None = None
    """The optimiser's own exit code (SciPy's for ``arch``), None when there is no optimiser."""
    message: str = ""
    """The optimiser's message, or what went wrong."""
    params_on_bounds: tuple[str, ...] = ()
    """Parameters sitting on a bound of their space: a sign of a poor specification."""
    persistence: float | None = None
    """How slowly a variance shock decays (``alpha + beta`` for GARCH(1,1)); 1 is a unit root."""
    warnings: tuple[str, ...] = ()
    """Warnings raised during the fit, kept rather than printed."""
    attempts: int = 1
    """Fits tried before this one was kept (retries from other starting points or scales)."""
    nobs: int = 0
    """Observations the model was fitted on."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FitReport:
        """The inverse of :meth:`to_dict`."""
        tuples = {k: tuple(v) for k, v in values.items() if k in {"params_on_bounds", "warnings"}}
        return cls(**{**values, **tuples})
