"""Every benchmark script explains itself with ``--help`` and exits 0, before any work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = sorted(
    p.name for p in (REPO / "benchmarks").glob("*.py") if "__main__" in p.read_text()
)  # the others are the scripts' modules


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_script_answers_help(script: str) -> None:
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--help"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
