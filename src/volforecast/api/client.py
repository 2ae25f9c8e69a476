"""A small client of the prediction service, for scripts, the dashboard and ``make run``.

python -m volforecast.api.client --url http://127.0.0.1:8000 --ticker AAPL --horizon 5
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, cast

import requests


class ApiClient:
    """Calls a running volforecast service.

    Parameters
    ----------
    url : str
        Where the service listens, e.g. ``http://127.0.0.1:8000``.
    api_key : str, optional
        Sent as ``X-API-Key`` when the service requires one.
    timeout_s : float
        Longest one request may take.
    """

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["X-API-Key"] = api_key
        self.timeout_s = timeout_s

    def wait_until_healthy(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """``GET /health`` until it answers 200; raises TimeoutError with the last answer."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = self.session.get(f"{self.url}/health", timeout=self.timeout_s)
                if answer.status_code == 200:
                    return cast("dict[str, Any]", answer.json())
                last = answer.text
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.5)
        msg = f"{self.url} is not healthy after {timeout_s:.0f} s: {last}"
        raise TimeoutError(msg)

    def predict(
        self, ticker: str, model_type: str | None = None, horizon: int = 5
    ) -> dict[str, Any]:
        """``POST /predict``; raises ``requests.HTTPError`` carrying the service's message.

        Without ``model_type`` the ticker's champion answers.
        """
        named = {} if model_type is None else {"model_type": model_type}
        answer = self.session.post(
            f"{self.url}/predict",
            json={"ticker": ticker, **named, "horizon": horizon},
            timeout=self.timeout_s,
        )
        if answer.status_code >= 400:
            msg = f"{answer.status_code}: {answer.json().get('detail', answer.text)}"
            raise requests.HTTPError(msg, response=answer)
        return cast("dict[str, Any]", answer.json())

    def models(self) -> list[dict[str, Any]]:
        """``GET /models``."""
        answer = self.session.get(f"{self.url}/models", timeout=self.timeout_s)
        answer.raise_for_status()
        return cast("list[dict[str, Any]]", answer.json())


def main() -> None:
    """Wait for the service, ask for one forecast, print it."""
    parser = argparse.ArgumentParser(
        description="Ask a running volforecast service for a forecast."
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--ticker", default="^GSPC")
    parser.add_argument(
        "--model-type", help="a model volforecast ships; the ticker's champion if left out"
    )
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /health")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    client = ApiClient(args.url, args.api_key)
    client.wait_until_healthy(args.wait)
    print(json.dumps(client.predict(args.ticker, args.model_type, args.horizon), indent=2))


if __name__ == "__main__":
    main()
