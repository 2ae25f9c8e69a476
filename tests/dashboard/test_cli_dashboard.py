"""`volforecast dashboard` as a real process: a signal to the CLI stops Streamlit, no orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.servers import clean_env, free_port

STARTUP_S = 90.0
STOP_S = 30.0


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_for_health(url: str, cli: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert cli.poll() is None, "the dashboard command ended before Streamlit answered"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310  (localhost)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer in {STARTUP_S} s")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_cli_stops_streamlit_and_is_its_exit_code(
    signum: signal.Signals, tmp_path: Path
) -> None:
    # Given `volforecast dashboard` serving, in a session of its own (as under a supervisor)
    port = free_port()
    env = clean_env(home=str(tmp_path / "var"))
    with (tmp_path / "dashboard.log").open("w") as log:
        cli = subprocess.Popen(
            [sys.executable, "-m", "volforecast", "dashboard", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    streamlit = None
    try:
        _wait_for_health(f"http://127.0.0.1:{port}/_stcore/health", cli)
        (streamlit,) = _children(cli.pid)
        # When the CLI alone is signalled (not its process group, as Ctrl-C would)
        cli.send_signal(signum)
        code = cli.wait(timeout=STOP_S)
        # Then Streamlit stopped too, and the CLI ended with its exit code: 0 for a clean stop
        assert not _alive(streamlit), "Streamlit is left running as an orphan"
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
        if streamlit is not None and _alive(streamlit):  # a failed test leaves no server
            os.kill(streamlit, signal.SIGKILL)
    assert code == 0, (tmp_path / "dashboard.log").read_text()[-2000:]
