"""Control characters in query values: refused before routing, naming the parameter."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from api.bootstrap import Platform
from api.http import create_app
from api.http.query_guard import parameter_with_control_character
from api.keys import create_key


@pytest.mark.parametrize(
    ("query", "name"),
    [
        (urlencode({"name": "王\x00芳"}), "name"),
        (urlencode({"limit": "5", "cursor": "\x1b[2J"}), "cursor"),
        ("name=%7f", "name"),
        ("name=%1F&x=1", "name"),
        ("a=1&b=%E7%8E%8B%00", "b"),
    ],
)
def test_a_control_character_anywhere_in_a_value_is_found(
    query: str, name: str
) -> None:
    assert parameter_with_control_character(query.encode()) == name


@pytest.mark.parametrize(
    "query",
    [
        "",
        urlencode({"name": "王芳", "since": "2025-01-01T00:00:00+08:00"}),
        "name=%25%31%46",  # the text "%1F", not the character
        "name=a+b&%00=1",  # only values are checked, as before
    ],
)
def test_ordinary_queries_pass(query: str) -> None:
    assert parameter_with_control_character(query.encode()) is None


def test_the_api_answers_422_naming_the_parameter(platform: Platform) -> None:
    with TestClient(create_app(platform)) as client:
        client.headers["Authorization"] = f"Bearer {create_key(platform.db, 'read')}"
        response = client.get("/v1/customers/search", params={"name": "王\x00芳"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"] == [
        {"field": "query.name", "message": "control characters are not allowed"}
    ]
    assert response.headers["X-Request-ID"] == error["request_id"]
