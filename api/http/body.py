"""Reads a request body within the size limit, before any parsing."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from api.http.errors import ApiError
from api.http.security import platform_of


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")


async def limited_body(request: Request) -> bytes:
    limit = platform_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise ApiError(400, "bad_request", "invalid Content-Length") from None
        if too_big:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if chunk:
            chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk: no copy


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiError(
            400,
            "invalid_json",
            "the body is not valid JSON",
            [{"field": "body", "message": "not valid JSON (UTF-8)"}],
        ) from None
