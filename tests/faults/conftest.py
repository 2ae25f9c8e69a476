"""The fault tests drive volforecast as a user does: ``python -m volforecast ...`` as a process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.servers import clean_env

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    """Run ``volforecast ARGS`` in its own process against the test's database and home.

    Keyword arguments become ``VOLFORECAST_*`` settings (or, upper-case, other variables);
    ``timeout`` bounds the run.
    """
    home = tmp_path / "var"

    def run(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        settings = {k: v for k, v in env.items() if not k.isupper()}
        variables = clean_env(home=str(home), database_url=database_url, **settings)
        variables |= {k: v for k, v in env.items() if k.isupper()}
        variables["COLUMNS"] = "200"
        return subprocess.run(
            [sys.executable, "-m", "volforecast", *args],
            env=variables,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
