"""`crm serve` sends each answer's head and body in one write on the socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import uvicorn

from api.web_protocol import OneWriteHttpToolsProtocol

App = Callable[[Any, Any, Any], Awaitable[None]]


class _Recorder:
    """The real transport, with each send made on it recorded."""

    def __init__(self, transport: Any, sends: list[bytes]) -> None:
        self._transport = transport
        self.sends = sends

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        lines = list(lines)
        self.sends.append(b"".join(lines))
        self._transport.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _recorded(sends: list[bytes]) -> type[OneWriteHttpToolsProtocol]:
    class Recorded(OneWriteHttpToolsProtocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_Recorder(transport, sends))

    return Recorded


async def _serving(app: App, sends: list[bytes], client: Any) -> Any:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=_recorded(sends),
        log_config=None,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        return await asyncio.wait_for(client(port), timeout=10)
    finally:
        server.should_exit = True
        await serving


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    body = ("你好，" + scope["path"]).encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _exchange(port: int, paths: list[str], close: bool = False) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for n, path in enumerate(paths):
        last = close and n == len(paths) - 1
        head = f"GET {quote(path)} HTTP/1.1\r\nHost: x\r\n"
        writer.write(
            (head + ("Connection: close\r\n" if last else "") + "\r\n").encode()
        )
        status = await reader.readuntil(b"\r\n\r\n")
        length = int(status.split(b"content-length: ")[1].split(b"\r\n")[0])
        answers.append(status + await reader.readexactly(length))
    if close:
        assert await reader.read() == b""  # the server closed, after the answer
    writer.close()
    return answers


def test_each_answer_leaves_in_one_send() -> None:
    sends: list[bytes] = []
    answers = asyncio.run(
        _serving(_answer, sends, lambda port: _exchange(port, ["/一", "/二"]))
    )
    assert [a.endswith("你好，/一".encode()) for a in answers] == [True, False]
    assert answers[1].endswith("你好，/二".encode())
    assert sends == answers  # head and body together, one send per answer


def test_an_answer_before_the_connection_closes_is_sent_whole() -> None:
    sends: list[bytes] = []
    answers = asyncio.run(
        _serving(_answer, sends, lambda port: _exchange(port, ["/三"], close=True))
    )
    assert sends == answers and answers[0].endswith("你好，/三".encode())


def test_a_streamed_body_is_not_held_back_between_its_parts() -> None:
    """The head and first part leave together; the second part only after the
    client has received the first (it would wait forever if parts were held)."""
    first_arrived = asyncio.Event()

    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/x-ndjson")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"1\n", "more_body": True})
        await first_arrived.wait()
        await send({"type": "http.response.body", "body": b"2\n"})

    async def client(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        first = await reader.readuntil(b"\r\n1\n\r\n")
        first_arrived.set()
        rest = await reader.readuntil(b"0\r\n\r\n")
        writer.close()
        return head + first + rest

    sends: list[bytes] = []
    answer = asyncio.run(_serving(streamed, sends, client))
    assert answer.endswith(b"2\r\n1\n\r\n2\r\n2\n\r\n0\r\n\r\n")
    assert len(sends) == 2 and sends[0].endswith(b"\r\n\r\n2\r\n1\n\r\n")
