"""Job leases end with their process: held while it runs, free once it is killed."""

from __future__ import annotations

import subprocess
import sys
import time

from sqlalchemy import Engine

from volforecast.data.db import create_db_engine
from volforecast.data.leases import JobLease, is_alive
from volforecast.settings import Settings

HOLD = """
import sys, time
from tests.conftest import make_settings
from volforecast.data.db import create_db_engine
from volforecast.data.leases import JobLease
engine = create_db_engine(make_settings(database_url=sys.argv[1]))
with JobLease(engine, sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_lease_is_alive_while_its_process_runs_and_dead_once_killed(
    engine: Engine, database_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, database_url, "token-1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert is_alive(engine, "token-1")
        assert is_alive(engine, "token-1"), "asking does not take the lease away"
        assert not is_alive(engine, "token-2")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    deadline = time.monotonic() + 30  # the server notices a dead client's socket at once
    while is_alive(engine, "token-1") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_alive(engine, "token-1")


def test_a_lease_released_on_exit_is_dead_to_every_other_process(
    engine: Engine, settings: Settings
) -> None:
    # Another engine stands for another process: asking on the holder's own pooled session
    # would succeed even if the lock were still held (advisory locks are reentrant).
    other = create_db_engine(settings)
    try:
        with JobLease(engine) as lease:
            assert is_alive(other, lease.token)
        assert not is_alive(other, lease.token)
    finally:
        other.dispose()
