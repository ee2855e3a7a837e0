"""`crm serve --no-projections` (or CRM_SERVE_PROJECTIONS=false): the server takes
posts and answers reads while the views are fed by one `crm project` elsewhere,
as where several web hosts share one database and one projector."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from scripts.soak import (
    free_port,
    make_keys,
    registration,
    scratch_postgres,
    server_env,
    start_server,
    stop_server,
)

CRM = str(Path(sys.executable).parent / "crm")


def _positions(base: str, headers: dict[str, str]) -> tuple[int, list[int]]:
    body = httpx.get(f"{base}/readyz", headers=headers, timeout=10).json()
    return body["head"], [p["position"] for p in body["projections"]]


def _views_wait_for_a_projector(
    url: str, tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    key = make_keys(url, ["admin"])["admin"]
    headers = {"Authorization": f"Bearer {key}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port, tmp_path / "serve.log", args, **env)
    projector = None
    try:
        event = registration(random.Random(3))
        answer = httpx.post(
            f"{base}/v1/events", json=event, headers=headers, timeout=30
        )
        assert answer.status_code == 201, answer.text
        position = answer.json()["position"]
        # A server that follows the log moves its views within a few tenths of
        # a second of a post; this one must leave them where they were.
        time.sleep(1.5)
        head, positions = _positions(base, headers)
        assert head == position
        assert positions and all(p < position for p in positions)

        projector = subprocess.Popen(
            [CRM, "project"],
            env=server_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while min(_positions(base, headers)[1]) < position:
            assert time.monotonic() < deadline, "crm project did not feed the views"
            time.sleep(0.2)
        customer_id = event["data"]["customer_id"]
        household = httpx.get(
            f"{base}/v1/customers/{customer_id}/household",
            params={"min_position": position},
            headers=headers,
            timeout=30,
        )
        assert household.status_code == 200, household.text
        assert customer_id in household.text
    finally:
        if projector is not None:
            projector.terminate()
            projector.wait(timeout=15)
        stop_server(server)


def test_one_server_without_projections_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _views_wait_for_a_projector(url, tmp_path, [], {"CRM_SERVE_PROJECTIONS": "false"})


def test_several_http_processes_without_projections_on_postgresql(
    tmp_path: Path,
) -> None:
    with scratch_postgres("crm_noproj") as url:
        _views_wait_for_a_projector(
            url, tmp_path, ["--workers", "2", "--no-projections"], {}
        )
