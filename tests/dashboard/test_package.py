"""``volforecast dashboard``: the real Streamlit server, started as a user starts it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.integration.servers import clean_env, free_port, volforecast_server


@pytest.mark.slow
def test_volforecast_dashboard_serves_the_app_on_the_configured_port(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(home=str(tmp_path / "var"), dashboard__port=str(port))
    health = f"http://127.0.0.1:{port}/_stcore/health"
    with volforecast_server(["dashboard"], env, tmp_path / "dashboard.log", health):
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200
        assert "<title>Streamlit</title>" in page.text or "streamlit" in page.text.lower()
    log = (tmp_path / "dashboard.log").read_text()
    assert f"dashboard on http://127.0.0.1:{port}" in log
