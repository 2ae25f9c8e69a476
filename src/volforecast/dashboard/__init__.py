"""The Streamlit dashboard: forecasts, model comparison, the registry and monitoring.

``streamlit run src/volforecast/dashboard/app.py`` starts it; :func:`streamlit_command` gives
the same command line for the CLI and the Makefile. The app reads through the prediction API
and read-only repository queries; it writes nothing of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app.py"
"""The Streamlit script."""

DEFAULT_PORT = 8501


def streamlit_command(port: int = DEFAULT_PORT, address: str = "127.0.0.1") -> list[str]:
    """The argv that serves the dashboard on ``address:port``, headless, without telemetry."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.port", str(port),
        "--server.address", address,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # The viewer's toolbar: no "Deploy" button pointing at Streamlit's cloud.
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
