"""Fault injection at named stage boundaries, for the tests that kill or stall a real process.

A job marks the boundaries between its stages with :func:`checkpoint`. Nothing happens unless
the environment names that checkpoint, so production runs pay one dictionary lookup per call:

``VOLFORECAST_FAULT_AT``
    The checkpoint to act at, e.g. ``train.after_register``.
``VOLFORECAST_FAULT_ACTION``
    ``kill`` (the default): the process sends itself SIGKILL there, as an operator's
    ``kill -9`` or the OOM killer would. ``pause``: it creates the file named by
    ``VOLFORECAST_FAULT_FILE`` and waits until that file is removed, so a test can break
    something (stop a server, say) at exactly that moment.

The environment is read at each call, not through the settings: this is a test hook, not a
setting a user tunes. The tests in ``tests/faults`` use it to kill a job at every stage
boundary rather than at random moments.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

AT = "VOLFORECAST_FAULT_AT"
ACTION = "VOLFORECAST_FAULT_ACTION"
FILE = "VOLFORECAST_FAULT_FILE"


def checkpoint(name: str) -> None:
    """Act on the fault the environment asks for at ``name``; do nothing otherwise."""
    if os.environ.get(AT) != name:
        return
    if os.environ.get(ACTION, "kill") == "pause":
        marker = Path(os.environ[FILE])
        marker.write_text(name)
        while marker.exists():
            time.sleep(0.05)
        return
    os.kill(os.getpid(), signal.SIGKILL)
