"""``python first_connect.py PORT FILE ARGS...``: ``python -m volforecast ARGS...``, clocked.

It runs the real command line, and writes ``time.monotonic()`` to FILE at the process's first
attempt to connect to PORT, seen through an audit hook (PEP 578): the moment a job's first
request to a tracking server that is down begins, with no help from the code under test. The
monotonic clock is the system's on Linux, so the test process can compare it with its own.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    port, path = int(sys.argv[1]), Path(sys.argv[2])
    noted = False

    def note(event: str, args: tuple[Any, ...]) -> None:
        nonlocal noted
        if noted or event != "socket.connect":
            return
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2 and address[1] == port:
            noted = True
            path.write_text(repr(time.monotonic()))

    sys.addaudithook(note)
    sys.argv = ["volforecast", *sys.argv[3:]]
    runpy.run_module("volforecast", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
