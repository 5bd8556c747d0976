"""Start the independent ``scim2-server`` (PyPI) as a real HTTP server for the SCIM tests.

The server runs in its own process (the ``scim2-server`` console script of the venv, in-memory
storage, one static bearer token) on a free 127.0.0.1 port. It is started once per test
session; :func:`wipe` deletes every User and Group through the SCIM API so each test starts
with an empty service.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
from server_process import wait_until_answers

TOKEN = "pasa-test-token-9f3c"  # test-only secret
TOKEN_ENV = "PASA_TEST_SCIM_TOKEN"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ScimServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def wipe(self) -> None:
        """Delete every Group and User through the API."""
        with self.client() as http:
            for endpoint in ("/Groups", "/Users"):
                while True:
                    page = http.get(endpoint, params={"count": 500}).json()
                    resources = page.get("Resources") or []
                    if not resources:
                        break
                    for resource in resources:
                        http.delete(f"{endpoint}/{resource['id']}").raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_scim_server(timeout: float = 20.0) -> ScimServer:
    script = Path(sys.executable).with_name("scim2-server")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "scim2_server"]
    port = free_port()
    process = subprocess.Popen(
        [*command, "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = ScimServer(process, port)

    def answers() -> bool:
        with server.client() as http:
            return http.get("/ServiceProviderConfig").status_code == 200

    wait_until_answers(
        process, answers, name="scim2-server", port=port, stop=server.stop, timeout=timeout
    )
    return server
