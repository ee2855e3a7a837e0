"""One writer for every HTTP process (`CRM_SHARED_WRITER`): posts handed over a
Unix socket come back as the same reports and the same refusals as posts the
HTTP process commits itself, and a writer that goes fails its waiting posts as
unavailable instead of leaving them hanging."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.bootstrap import Platform
from api.store.group_commit import GroupCommitter
from api.store.ingest import BatchRejected, Report
from api.writer import (
    WriterClient,
    WriterFailed,
    WriterServer,
    WriterUnavailable,
    _answer,
)
from scripts.soak import free_port, make_keys, start_server, stop_server
from tests.factories import account_opened, contact_logged, new_id, registered

KEY = b"0123456789abcdef"


@contextmanager
def writer_on(address: str, platform: Platform) -> Iterator[WriterServer]:
    committer = GroupCommitter(platform.ingestor)
    server = WriterServer(address, KEY, committer)
    thread = threading.Thread(target=server.serve)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
        committer.close()


def test_posts_through_the_writer_are_stored_and_answered_as_at_home(
    platform: Platform, tmp_path: Path
) -> None:
    address = str(tmp_path / "writer.sock")
    with writer_on(address, platform):
        client = WriterClient(address, KEY)
        assert client.connect(timeout=5)
        customers = [registered(name=f"陈{i}") for i in range(24)]
        requests = [[c, account_opened(c["data"]["customer_id"])] for c in customers]
        with ThreadPoolExecutor(8) as pool:
            futures = list(pool.map(client.submit, requests))
        reports = [f.result(timeout=30) for f in futures]
        positions = []
        for request, report in zip(requests, reports, strict=True):
            assert isinstance(report, Report)
            assert [o.event_id for o in report.outcomes] == [
                e["event_id"] for e in request
            ]
            assert [o.status for o in report.outcomes] == ["stored", "stored"]
            assert all(o.same_event is None for o in report.outcomes)
            positions += [o.position for o in report.outcomes]
        assert sorted(positions) == list(range(1, 49))  # each stored once

        # A retry is a duplicate with the first copy's position.
        again = client.submit(requests[0]).result(timeout=30)
        assert [o.status for o in again.outcomes] == ["duplicate", "duplicate"]
        assert [o.position for o in again.outcomes] == [
            o.position for o in reports[0].outcomes
        ]
        client.close()
    assert platform.app.recorder.max_notification_id() == 48


def test_a_refusal_crosses_with_its_status_code_and_problems(
    platform: Platform, tmp_path: Path
) -> None:
    address = str(tmp_path / "writer.sock")
    with writer_on(address, platform):
        client = WriterClient(address, KEY)
        customer = registered()
        unknown = contact_logged(new_id())  # a customer never registered
        with pytest.raises(BatchRejected) as refused:
            client.submit([customer, unknown]).result(timeout=30)
        assert refused.value.status == 422
        assert [p.index for p in refused.value.problems] == [1]
        assert refused.value.problems[0].event_id == unknown["event_id"]

        client.submit([customer]).result(timeout=30)
        changed = json.loads(json.dumps(customer))
        changed["data"]["name"] = "不同"
        with pytest.raises(BatchRejected) as conflict:
            client.submit([changed]).result(timeout=30)
        assert conflict.value.status == 409
        assert conflict.value.code == "event_id_conflict"
        client.close()
    assert (
        platform.app.recorder.max_notification_id() == 1
    )  # the refused stored nothing


def test_a_large_post_is_committed_by_the_http_process_itself(
    platform: Platform, tmp_path: Path
) -> None:
    """No writer listens here: a small post is refused as unavailable, a post
    of `local_from` events is stored by the process's own committer."""
    local = GroupCommitter(platform.ingestor)
    client = WriterClient(str(tmp_path / "none.sock"), KEY, local, local_from=3)
    customer = registered()
    with pytest.raises(WriterUnavailable):
        client.submit([customer]).result(timeout=5)
    cid = customer["data"]["customer_id"]
    batch = [customer, account_opened(cid), contact_logged(cid)]
    report = client.submit(batch).result(timeout=30)
    assert [o.status for o in report.outcomes] == ["stored"] * 3
    assert [o.position for o in report.outcomes] == [1, 2, 3]
    client.close()


def test_an_error_that_does_not_pickle_is_sent_as_its_type_and_message() -> None:
    import pickle
    from concurrent.futures import Future

    class Local(Exception):  # defined here: pickle cannot find it by name
        pass

    future: Future[Report] = Future()
    future.set_exception(Local("the disk is full"))
    answer = _answer(b"12345678", future)
    sent = pickle.loads(answer[8:])
    assert isinstance(sent, WriterFailed)
    assert "Local" in str(sent) and "the disk is full" in str(sent)


def test_posts_fail_as_unavailable_while_the_writer_is_gone_and_pass_once_it_is_back(
    platform: Platform, tmp_path: Path
) -> None:
    address = str(tmp_path / "writer.sock")
    client = WriterClient(address, KEY)
    assert not client.connect(timeout=0.2)  # nothing listens yet
    with pytest.raises(WriterUnavailable):
        client.submit([registered()]).result(timeout=5)

    with writer_on(address, platform):
        assert client.submit([registered()]).result(timeout=30).count("stored") == 1
    # The writer went: the answers' reader notices, and posts are refused at
    # once as unavailable until a writer listens again.
    deadline = time.monotonic() + 10
    while client._connection is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(WriterUnavailable):
        client.submit([registered()]).result(timeout=5)
    with writer_on(address, platform):
        assert client.submit([registered()]).result(timeout=30).count("stored") == 1
    client.close()
    assert platform.app.recorder.max_notification_id() == 2


@pytest.mark.postgres
def test_crm_serve_with_a_shared_writer_stores_and_reads_back_posts(
    postgres_url: str, tmp_path: Path
) -> None:
    keys = make_keys(postgres_url, ["ingest", "read"])
    port = free_port()
    server = start_server(
        postgres_url,
        port,
        tmp_path / "serve.log",
        CRM_WEB_WORKERS="2",
        CRM_SHARED_WRITER="true",
    )
    base = f"http://127.0.0.1:{port}"
    post = {"Authorization": f"Bearer {keys['ingest']}"}
    try:
        customers = [registered(name=f"刘{i}") for i in range(16)]

        def send(customer: dict) -> httpx.Response:
            with httpx.Client(base_url=base, headers=post, timeout=30) as http:
                return http.post("/v1/events", json=customer)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, customers))
        assert [a.status_code for a in answers] == [201] * 16, answers[0].text
        positions = sorted(a.json()["position"] for a in answers)
        assert positions == list(range(1, 17))

        with httpx.Client(base_url=base, timeout=30) as http:
            bad = http.post("/v1/events", json=[1], headers=post)
            assert bad.status_code == 422
            first = customers[0]["data"]["customer_id"]
            refused = http.post(
                "/v1/events",
                json={"events": [contact_logged(first), contact_logged(new_id())]},
                headers=post,
            )
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["details"][0]["index"] == 1
            read = {"Authorization": f"Bearer {keys['read']}"}
            household = http.get(
                f"/v1/customers/{first}/household",
                params={"min_position": positions[-1]},
                headers=read,
            )
            assert household.status_code == 200, household.text
            ready = http.get("/readyz", headers=read)
            assert ready.json()["writer"] == "connected"
        log = (tmp_path / "serve.log").read_text()
        assert "writer.listening" in log

        # The writer dies: posts are refused as unavailable (never hang), and
        # pass again once `crm serve` has started another.
        writer = _writer_pid(server.pid)
        os.kill(writer, signal.SIGKILL)
        time.sleep(0.2)  # the supervisor waits a second before a new writer
        with httpx.Client(base_url=base, timeout=30) as http:
            ready = http.get("/readyz", headers=read)
        assert ready.status_code == 200  # reads go on
        assert ready.json()["writer"] == "unreachable"
        statuses = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answer = send(registered())
            statuses.append(answer.status_code)
            if answer.status_code == 201:
                break
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "unavailable"
            time.sleep(0.2)
        assert statuses[-1] == 201, statuses
        assert _writer_pid(server.pid) != writer
    finally:
        stop_server(server)


def _writer_pid(server_pid: int) -> int:
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"api.writer" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    raise AssertionError("no writer process")
