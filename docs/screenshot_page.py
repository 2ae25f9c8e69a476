"""Screenshot a Streamlit page once it has drawn, through headless Chromium's DevTools protocol.

``chromium --screenshot`` cannot wait for Streamlit: the page draws over a websocket after the
script has run on the server, and Chromium's virtual-time budget does not count that wait. So
this starts Chromium with a debugging port, opens the page, polls the DOM until every
``--wait-for`` selector is there and the app has stopped running, and then captures it.

python docs/screenshot_page.py URL OUT.png [--size 1400,1000] [--wait-for CSS]... [--timeout 120]
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

READY_JS = """
(() => {
  const selectors = %s;
  const drawn = selectors.every((s) => document.querySelector(s) !== null);
  // The status widget (a running figure and "Stop") shows while the script runs.
  const running = document.querySelector('[data-testid="stStatusWidget"]') !== null;
  const skeleton = document.querySelector('[data-testid="stSkeleton"]') !== null;
  return drawn && !running && !skeleton;
})()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Page:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:  # events arrive between answers; only ours ends the wait
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result


def screenshot(url: str, out: Path, *, width: int, height: int, wait_for: list[str],
               timeout_s: float, settle_s: float) -> None:  # fmt: skip
    """Open ``url``, wait until it has drawn, write a PNG of the viewport to ``out``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="vf-chromium-") as profile:
        chrome = subprocess.Popen(  # noqa: S603
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={width},{height}", f"--remote-debugging-port={port}",
             f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            targets: list[dict[str, Any]] = []
            while not targets:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as answer:
                        targets = [t for t in json.load(answer) if t.get("type") == "page"]
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            with connect(targets[0]["webSocketDebuggerUrl"], max_size=2**26) as socket:
                page = _Page(socket)
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                          deviceScaleFactor=1, mobile=False)  # fmt: skip
                page.call("Page.navigate", url=url)
                check = READY_JS % json.dumps(wait_for)
                while True:
                    ready = page.call("Runtime.evaluate", expression=check, returnByValue=True)
                    if ready.get("result", {}).get("value") is True:
                        break
                    if time.monotonic() > deadline:
                        msg = f"{url} did not draw {wait_for} within {timeout_s:.0f} s"
                        raise SystemExit(msg)
                    time.sleep(0.5)
                time.sleep(settle_s)  # let Plotly finish its transitions
                shot = page.call("Page.captureScreenshot", format="png")
            out.write_bytes(base64.b64decode(shot["data"]))
        finally:
            chrome.terminate()
            chrome.wait(timeout=30)


def main() -> None:
    """Parse the command line and take the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="1400,1000", help="viewport WIDTH,HEIGHT in pixels")
    parser.add_argument("--wait-for", action="append", default=[], help="CSS selector")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds after drawing")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split(","))
    screenshot(args.url, args.out, width=width, height=height, wait_for=args.wait_for,
               timeout_s=args.timeout, settle_s=args.settle)  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
