"""A headless Chromium driven through the DevTools protocol (a websocket to localhost), network off.

Used by the site tests to do what a reader does: open a page at a given window size, click, choose in a
select, and read back what is drawn (``evaluate`` runs JavaScript in the page and returns its JSON value)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  # the network is off: every host resolves nowhere and any proxy use goes to a closed port
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise AssertionError("Chromium is required for the browser test (apt-get install chromium; `make test` does it)")


class Browser:
    """One Chromium page at ``width`` x ``height`` pixels; use as a context manager."""

    def __init__(self, profile: Path, width: int = 1300, height: int = 900):
        self.profile, self.width, self.height = profile, width, height
        self.ids = itertools.count(1)

    def __enter__(self) -> "Browser":
        self.process = subprocess.Popen([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                         f"--window-size={self.width},{self.height}", "--remote-debugging-port=0",
                                         "about:blank"], stderr=subprocess.PIPE, text=True)
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found and found.group(1)
        assert port, "Chromium did not start its DevTools endpoint"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as reply:
            page = next(t for t in json.load(reply) if t["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        self.socket.close()
        self.process.kill()
        self.process.wait(timeout=30)

    def call(self, method: str, **params) -> dict:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                assert "error" not in message, (method, message["error"])
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, page: Path, ready: str = "true", timeout: float = 60) -> None:
        """Load ``page`` and wait until it has loaded and the JavaScript condition ``ready`` holds."""
        self.call("Page.navigate", url=page.as_uri())
        self.wait(f"document.readyState === 'complete' && ({ready})", timeout)

    def wait(self, condition: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({condition})"):
            assert time.monotonic() < deadline, f"timed out waiting for {condition}"
            time.sleep(0.25)
