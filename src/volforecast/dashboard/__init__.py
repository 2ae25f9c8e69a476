"""The Streamlit dashboard: forecasts, model comparison, the registry and monitoring.

``streamlit run src/volforecast/dashboard/app.py`` starts it; :func:`streamlit_command` gives
the same command line for the CLI and the Makefile. The app reads through the prediction API
and read-only repository queries; it writes nothing of its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

APP_PATH = Path(__file__).resolve().parent / "app.py"
"""The Streamlit script."""


def streamlit_command(port: int, address: str) -> list[str]:
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


def run_streamlit(command: list[str]) -> int:
    """Run ``command`` (Streamlit) until it ends; Ctrl-C and SIGTERM are passed on to it.

    Returns its exit code, or 128 plus the signal's number when a signal ended it, as a shell
    reports it. A supervisor that stops the CLI (``kill``, systemd, a container runtime) thus
    stops Streamlit too, instead of leaving it serving as an orphan.
    """
    child = subprocess.Popen(command)  # noqa: S603  (our own interpreter and script)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code
