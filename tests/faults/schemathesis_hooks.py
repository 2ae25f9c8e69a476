"""Two things an OpenAPI schema cannot say, told to schemathesis (``SCHEMATHESIS_HOOKS``).

Loaded by the ``schemathesis run`` that tests/faults/test_openapi_conformance.py starts.
Everything else schemathesis checks is left as it is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Drop requests whose ``end`` is before ``start``.

    Each query parameter has its own schema, so no schema can relate two of them; the
    service answers such a window with 422, as it documents.
    """
    query = case.query or {}
    start, end = query.get("start"), query.get("end")
    return not (isinstance(start, str) and isinstance(end, str) and start > end)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Drop "valid data refused" where a path parameter was a literal ``{name}``.

    ``GET /`` lists ``/predictions/{ticker}`` among its links, a URI template as GitHub's
    API root lists its own. Schemathesis reads every string that starts with ``/`` as a URL
    to follow, sends ``{ticker}`` as the ticker and counts the 422 as valid data refused.
    Every other check of those requests (the 422's body among them) still counts.
    """
    if not isinstance(failure, RejectedPositiveData):
        return True
    values = [unquote(str(value)) for value in (case.path_parameters or {}).values()]
    return not any(value.startswith("{") and value.endswith("}") for value in values)
