"""A vendor-style door access control REST API, for the door connector's tests.

The API is written from general knowledge of how enterprise access control systems (Gallagher
Command Centre and similar) expose cardholders and access groups over REST. It is a model of
that style, not any vendor's exact API.

Resources (every ``/api`` call needs ``Authorization: GGL-API-KEY <key>``, else 401)
    ``GET /api/cardholders`` — search: ``?<personalDataField>=<value>`` (exact match, e.g.
    ``pasaUsername``, ``employeeNumber``), ``?name=`` (substring of "first last"), paged by
    ``top`` (page size) and ``pos``; the answer is ``{"results": [...], "next": {"href"}}``
    with ``next`` only when more remain. Results are full cardholders.
    ``POST /api/cardholders`` — 201 with ``Location``; 409 if a unique personal data field
    (``pasaUsername``) is taken.
    ``GET / PATCH / DELETE /api/cardholders/{id}`` — PATCH sets ``firstName``, ``lastName``,
    ``division``, ``authorised``; merges ``personalDataFields`` (``null`` removes a field);
    ``accessGroups`` is ``{"add": [{"accessGroup": {"href"}, "from", "until"}],
    "update": [{"href", "from", "until"}], "remove": [{"href"}]}``.
    ``GET /api/access_groups`` (``?name=``, paged like cardholders), ``POST`` to add one.
Test hooks (no key needed)
    ``POST /__reset`` — forget every cardholder and restore the access-group catalogue;
    ``POST /__fail`` — ``{"status", "headers", "count"}``: answer the next ``count`` ``/api``
    calls with that status.

Run it with :func:`start_door_simulator` (a uvicorn subprocess on a free 127.0.0.1 port).
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from server_process import wait_until_answers

API_KEY = "door-sim-key-5d1e"  # test-only secret
API_KEY_ENV = "PASA_TEST_DOOR_API_KEY"
UNIQUE_FIELDS = ("pasaUsername",)
CATALOGUE = (
    "wards",
    "pharmacy-store",
    "theatres",
    "radiology",
    "maternity",
    "emergency-department",
    "pathology-labs",
    "it-comms-rooms",
    "estates-plant",
    "medical-records",
    "main-entrance",
    "staff-car-park",
)
CARDHOLDER_FIELDS = ("firstName", "lastName", "division", "authorised")


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ids = itertools.count(1001)
        self.cardholders: dict[str, dict[str, Any]] = {}
        self.access_groups: dict[str, dict[str, Any]] = {}
        self.failures: list[tuple[int, dict[str, str]]] = []
        for name in CATALOGUE:
            self.add_access_group(name, "")

    def add_access_group(self, name: str, description: str) -> dict[str, Any]:
        group_id = str(next(self.ids))
        group = {"id": group_id, "name": name, "description": description}
        self.access_groups[group_id] = group
        return group


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def create_app(api_key: str) -> FastAPI:
    app = FastAPI(title="Door access control simulator")
    state = _State()

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def group_view(request: Request, group: dict[str, Any]) -> dict[str, Any]:
        return {**group, "href": f"{base(request)}/api/access_groups/{group['id']}"}

    def cardholder_view(request: Request, holder: dict[str, Any]) -> dict[str, Any]:
        root = base(request)
        href = f"{root}/api/cardholders/{holder['id']}"
        groups = []
        for entry in holder["accessGroups"]:
            group = state.access_groups.get(entry["group_id"])
            groups.append(
                {
                    "href": f"{href}/access_groups/{entry['id']}",
                    "accessGroup": {
                        "href": f"{root}/api/access_groups/{entry['group_id']}",
                        "name": group["name"] if group else None,
                    },
                    "from": entry["from"],
                    "until": entry["until"],
                }
            )
        return {
            "id": holder["id"],
            "href": href,
            **{key: holder[key] for key in CARDHOLDER_FIELDS},
            "personalDataFields": dict(holder["personalDataFields"]),
            "accessGroups": groups,
        }

    def page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            top = max(1, int(request.query_params.get("top", "100")))
            pos = max(0, int(request.query_params.get("pos", "0")))
        except ValueError:
            top, pos = 100, 0
        body: dict[str, Any] = {"results": items[pos : pos + top]}
        if pos + top < len(items):
            body["next"] = {"href": str(request.url.include_query_params(pos=pos + top))}
        return body

    def taken(fields: dict[str, Any], holder_id: str | None) -> str | None:
        for name in UNIQUE_FIELDS:
            value = fields.get(name)
            if value is None:
                continue
            for other in state.cardholders.values():
                if other["id"] != holder_id and other["personalDataFields"].get(name) == value:
                    return f"personal data field {name} '{value}' is already in use"
        return None

    def group_id_of(href: Any) -> str | None:
        if not isinstance(href, str):
            return None
        group_id = href.rstrip("/").rsplit("/", 1)[-1]
        return group_id if group_id in state.access_groups else None

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/api"):
            if state.failures:
                status, headers = state.failures.pop(0)
                response = _error(status, "simulated failure")
                response.headers.update(headers)
                return response
            if request.headers.get("Authorization") != f"GGL-API-KEY {api_key}":
                return _error(401, "missing or invalid API key")
        return await call_next(request)

    @app.post("/__reset")
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    @app.post("/__fail")
    async def fail(request: Request) -> Response:
        body = await request.json()
        headers = {str(k): str(v) for k, v in (body.get("headers") or {}).items()}
        for _ in range(int(body.get("count", 1))):
            state.failures.append((int(body["status"]), headers))
        return Response(status_code=204)

    @app.get("/api/access_groups")
    async def list_access_groups(request: Request) -> dict[str, Any]:
        name = request.query_params.get("name")
        groups = [
            group_view(request, g)
            for g in state.access_groups.values()
            if name is None or g["name"] == name
        ]
        return page(request, groups)

    @app.post("/api/access_groups")
    async def create_access_group(request: Request) -> Response:
        body = await request.json()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return _error(400, "an access group needs a name")
        if any(g["name"] == name for g in state.access_groups.values()):
            return _error(409, f"access group '{name}' already exists")
        group = state.add_access_group(name, str(body.get("description") or ""))
        view = group_view(request, group)
        return JSONResponse(view, status_code=201, headers={"Location": view["href"]})

    @app.get("/api/cardholders")
    async def search_cardholders(request: Request) -> dict[str, Any]:
        name = request.query_params.get("name")
        exact = {k: v for k, v in request.query_params.items() if k not in ("name", "top", "pos")}
        found = []
        for holder in state.cardholders.values():
            full = f"{holder['firstName'] or ''} {holder['lastName'] or ''}".lower()
            if name is not None and name.lower() not in full:
                continue
            fields = holder["personalDataFields"]
            if any(fields.get(k) != v for k, v in exact.items()):
                continue
            found.append(cardholder_view(request, holder))
        return page(request, found)

    @app.post("/api/cardholders")
    async def create_cardholder(request: Request) -> Response:
        body = await request.json()
        fields = {k: v for k, v in (body.get("personalDataFields") or {}).items() if v is not None}
        clash = taken(fields, None)
        if clash:
            return _error(409, clash)
        if not body.get("lastName") and not body.get("firstName"):
            return _error(400, "a cardholder needs a first or last name")
        holder: dict[str, Any] = {
            "id": str(next(state.ids)),
            "firstName": body.get("firstName"),
            "lastName": body.get("lastName"),
            "division": body.get("division"),
            "authorised": bool(body.get("authorised", False)),
            "personalDataFields": fields,
            "accessGroups": [],
        }
        state.cardholders[holder["id"]] = holder
        view = cardholder_view(request, holder)
        return JSONResponse(view, status_code=201, headers={"Location": view["href"]})

    @app.get("/api/cardholders/{holder_id}")
    async def get_cardholder(holder_id: str, request: Request) -> Response:
        holder = state.cardholders.get(holder_id)
        if holder is None:
            return _error(404, f"no cardholder {holder_id}")
        return JSONResponse(cardholder_view(request, holder))

    @app.patch("/api/cardholders/{holder_id}")
    async def patch_cardholder(holder_id: str, request: Request) -> Response:
        holder = state.cardholders.get(holder_id)
        if holder is None:
            return _error(404, f"no cardholder {holder_id}")
        body = await request.json()
        fields = dict(holder["personalDataFields"])
        for key, value in (body.get("personalDataFields") or {}).items():
            if value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
        clash = taken(fields, holder_id)
        if clash:
            return _error(409, clash)
        entries = [dict(e) for e in holder["accessGroups"]]
        changes = body.get("accessGroups") or {}
        for add in changes.get("add") or []:
            group_id = group_id_of((add.get("accessGroup") or {}).get("href"))
            if group_id is None:
                return _error(400, "unknown access group")
            entry_id = str(next(state.ids))
            entries.append(
                {
                    "id": entry_id,
                    "group_id": group_id,
                    "from": add.get("from"),
                    "until": add.get("until"),
                }
            )
        for update in changes.get("update") or []:
            entry_id = str(update.get("href", "")).rstrip("/").rsplit("/", 1)[-1]
            match = [e for e in entries if e["id"] == entry_id]
            if not match:
                return _error(404, f"no access group membership {entry_id}")
            match[0]["from"] = update.get("from")
            match[0]["until"] = update.get("until")
        for remove in changes.get("remove") or []:
            entry_id = str(remove.get("href", "")).rstrip("/").rsplit("/", 1)[-1]
            entries = [e for e in entries if e["id"] != entry_id]
        for key in CARDHOLDER_FIELDS:
            if key in body:
                holder[key] = bool(body[key]) if key == "authorised" else body[key]
        holder["personalDataFields"] = fields
        holder["accessGroups"] = entries
        return Response(status_code=204)

    @app.delete("/api/cardholders/{holder_id}")
    async def delete_cardholder(holder_id: str) -> Response:
        if state.cardholders.pop(holder_id, None) is None:
            return _error(404, f"no cardholder {holder_id}")
        return Response(status_code=204)

    return app


# -- running it in a subprocess ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DoorSimulator:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"GGL-API-KEY {API_KEY}"},
            timeout=10,
        )

    def reset(self) -> None:
        with self.client() as http:
            http.post("/__reset").raise_for_status()

    def fail_next(self, status: int, headers: dict[str, str] | None = None, count: int = 1) -> None:
        with self.client() as http:
            body = {"status": status, "headers": headers or {}, "count": count}
            http.post("/__fail", json=body).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_door_simulator(timeout: float = 20.0) -> DoorSimulator:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    simulator = DoorSimulator(process, port)

    def answers() -> bool:
        with simulator.client() as http:
            return http.get("/api/access_groups").status_code == 200

    wait_until_answers(
        process, answers, name="door simulator", port=port, stop=simulator.stop, timeout=timeout
    )
    return simulator


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=API_KEY)
    args = parser.parse_args()
    uvicorn.run(create_app(args.api_key), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
