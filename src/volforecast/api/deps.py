"""Named dependencies the routes declare: the service state and the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from volforecast.api.state import ServiceState

# Async on purpose: FastAPI runs a plain `def` dependency on a worker thread, and these
# only read attributes.


async def get_state(request: Request) -> ServiceState:
    """The running service's state."""
    return service(request)


StateDep = Annotated[ServiceState, Depends(get_state)]


def service(request: Request) -> ServiceState:
    """The running service's state, for the busiest routes.

    They take the ``Request`` and call this rather than declare ``StateDep``: FastAPI solves
    a dependency on every request, which cost ``POST /predict`` a sixth of its time.
    """
    return cast("ServiceState", request.app.state.service)


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def require_api_key(
    state: StateDep, given: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """Refuses a request without the right ``X-API-Key`` when a key is configured."""
    expected = state.settings.api.api_key
    if expected is None:
        return
    # Bytes, not text: compare_digest refuses non-ASCII str, and a header may hold any byte.
    # Starlette decodes headers as latin-1, so encoding back gives the bytes that were sent.
    sent = None if given is None else given.encode("latin-1", errors="replace")
    if sent is None or not hmac.compare_digest(sent, expected.get_secret_value().encode()):
        raise HTTPException(401, "a valid X-API-Key header is required",
                            headers={"WWW-Authenticate": "APIKey"})  # fmt: skip
