"""uvicorn's HTTP/1.1 protocol, writing each answer's head and body in one send.

uvicorn writes a response's status line and headers as soon as the app sends
them, and its body in a second write: two sends on the socket for every
answer, each a system call that also wakes the client. Here writes made in
one turn of the event loop are held and leave together, in one `writelines`
(one `writev`), at the latest when the loop comes round again. Under 32
clients reading households, the sends took 12 % of a web process's samples
instead of 17 %, and the clients 10 % less CPU (docs/benchmarks.md,
eighteenth pass). It relies on uvicorn's protocol taking its transport in
`connection_made`, as uvicorn's versions pinned in pyproject.toml do.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _WritesTogether:
    """A transport that sends the writes of one loop turn together."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, []
        if held and not self._transport.is_closing():
            self._transport.writelines(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` over a transport that sends each turn's writes together."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_WritesTogether(transport, self.loop))  # type: ignore[arg-type]
