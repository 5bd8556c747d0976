"""Start a real server in a subprocess and wait until it answers (shared by test servers)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


def wait_until_answers(
    process: subprocess.Popen[bytes],
    probe: Callable[[], bool],
    *,
    name: str,
    port: int,
    stop: Callable[[], None],
    timeout: float,
) -> None:
    """Poll ``probe`` until it is true; fail clearly if the process dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode}")
        try:
            if probe():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop()
    raise RuntimeError(f"{name} did not answer on port {port} within {timeout} s")
