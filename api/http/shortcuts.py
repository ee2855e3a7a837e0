"""A shorter way through FastAPI for the hottest requests in their plainest form.

For every request FastAPI matches the path against its routers, then resolves
each parameter and dependency of the route through its general machinery:
for the reads of a household or a contact history, a third of the web
process's CPU (per read over HTTP, 685-701 µs before this layer and 460-468
µs with it; docs/benchmarks.md, eighteenth pass). Yet the hottest requests
have nothing to resolve: a read of a customer's household or contact history,
or of a household by its id, with no query string has every parameter at its
default, and a post of events has no parameter at all (`SHORT_ROUTES`).

This layer sits inside the app's own middleware, where FastAPI's router would
be reached. For exactly those requests it finds the route itself, checks the
key with the route's own dependency (`security.require`'s) and calls the
route's own endpoint function with the defaults the route declares. An error
goes to the handler the app registered for it (`errors.py`), and anything
else propagates as it would from FastAPI's router. Every other request (a
query string, an id that is not a canonical UUID, another path or method)
goes the ordinary way. `tests/test_shortcuts.py` holds both ways to the same
answers.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple
from uuid import UUID

from fastapi import APIRouter, FastAPI, params
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.security import bearer
from api.keys import ApiKey

_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

Endpoint = Callable[..., Awaitable[Response]]


def query_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """Each query parameter of `function` at the default it declares."""
    return {
        name: parameter.default.default
        for name, parameter in inspect.signature(function).parameters.items()
        if isinstance(parameter.default, params.Query)
    }


class Shortcut(NamedTuple):
    route: APIRoute
    check_key: Callable[[Request, Any], Awaitable[ApiKey]]
    answer: Callable[[Request, dict[str, Any], ApiKey], Awaitable[Response]]
    """The endpoint called with the request, the path's parameters and the key."""
    parameter: str | None
    """The name of the path's one parameter, an id (None: the path has none)."""


def _path_parameter(route: APIRoute) -> str | None:
    names = [p[1:-1] for p in route.path.split("/") if p.startswith("{")]
    if len(names) > 1:
        raise TypeError(f"{route.path}: a shortcut takes at most one path parameter")
    return names[0] if names else None


def _read_by_id(route: APIRoute) -> Callable[..., Awaitable[Response]]:
    """A read's endpoint given the id in its path, with every query parameter,
    and every dependency made only of query parameters, at its default."""
    endpoint: Endpoint = route.endpoint
    parameter = _path_parameter(route)
    assert parameter is not None
    fixed = query_defaults(endpoint)
    # The dependencies made of query parameters alone (the history's filters);
    # the key's is the one `Shortcut.check_key` stands for.
    made: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
    for name, dependency_parameter in inspect.signature(endpoint).parameters.items():
        default = dependency_parameter.default
        if name == "key" or not isinstance(default, params.Depends):
            continue
        dependency = default.dependency
        assert dependency is not None
        defaults = query_defaults(dependency)
        if len(defaults) != len(inspect.signature(dependency).parameters):
            raise TypeError(f"{route.path}: {name} is not made of query parameters")
        made[name] = (dependency, defaults)

    async def answer(request: Request, path: dict[str, Any], key: ApiKey) -> Response:
        arguments = dict(fixed)
        for name, (dependency, defaults) in made.items():
            arguments[name] = await dependency(**defaults)
        return await endpoint(request, UUID(path[parameter]), key=key, **arguments)

    return answer


def _post(route: APIRoute) -> Callable[..., Awaitable[Response]]:
    endpoint: Endpoint = route.endpoint

    async def answer(request: Request, _path: dict[str, Any], key: ApiKey) -> Response:
        return await endpoint(request, key=key)

    return answer


# The routes taken this way: (method, template) -> how to call the endpoint.
# Each endpoint is async and answers with a Response of its own.
SHORT_ROUTES: dict[tuple[str, str], Callable[[APIRoute], Any]] = {
    ("GET", "/v1/customers/{customer_id}/household"): _read_by_id,
    ("GET", "/v1/customers/{customer_id}/contact-history"): _read_by_id,
    ("GET", "/v1/households/{household_id}"): _read_by_id,
    ("POST", "/v1/events"): _post,
}


def key_check(route: APIRoute) -> Callable[[Request, Any], Awaitable[ApiKey]]:
    """The route's own key dependency (`security.require`), its `key` parameter's."""
    key = inspect.signature(route.endpoint).parameters.get("key")
    if key is None or not isinstance(key.default, params.Depends):
        raise TypeError(f"{route.path}: the shortcut passes the key as `key`")
    dependency = key.default.dependency
    assert dependency is not None
    return dependency


Shape = tuple[str, tuple[str, ...]]
"""A method and a path's segments, its one parameter (if any) as "{}"."""


def _shape(method: str, template: str) -> Shape:
    parts = template.split("/")
    return method, tuple("{}" if p.startswith("{") else p for p in parts)


def shortcuts_of(routers: Iterable[APIRouter]) -> dict[Shape, Shortcut]:
    """The routes of `routers` (included in the app without a prefix) that
    `SHORT_ROUTES` names, keyed by the shape of their path."""
    found: dict[Shape, Shortcut] = {}
    for route in (r for router in routers for r in router.routes):
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            make = SHORT_ROUTES.get((method, route.path))
            if make is not None:
                if not inspect.iscoroutinefunction(route.endpoint):
                    raise TypeError(f"{route.path}: a shortcut awaits its endpoint")
                found[_shape(method, route.path)] = Shortcut(
                    route, key_check(route), make(route), _path_parameter(route)
                )
    return found


class Shortcuts:
    """Takes the requests `SHORT_ROUTES` names, in their plainest form, past
    FastAPI's routing and parameter resolution; passes on every other one."""

    def __init__(
        self, app: ASGIApp, fastapi: FastAPI, routers: Iterable[APIRouter]
    ) -> None:
        self.app = app
        self.fastapi = fastapi
        self._routes = shortcuts_of(routers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("query_string"):
            found = self._match(scope["method"], scope["path"])
            if found is not None:
                await self._serve(found[0], found[1], scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, method: str, path: str) -> tuple[Shortcut, dict[str, Any]] | None:
        parts = path.split("/")
        found = self._routes.get((method, tuple(parts)))
        if found is not None and found.parameter is None:
            return found, {}
        for index, part in enumerate(parts):
            if _CANONICAL_UUID.fullmatch(part):
                shape = (*parts[:index], "{}", *parts[index + 1 :])
                found = self._routes.get((method, shape))
                if found is not None and found.parameter is not None:
                    return found, {found.parameter: part}
        return None

    async def _serve(
        self,
        shortcut: Shortcut,
        path_params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        scope["route"] = shortcut.route  # the route the log line and metrics name
        scope["path_params"] = path_params
        request = Request(scope, receive, send)
        try:
            key = await shortcut.check_key(request, await bearer(request))
            response = await shortcut.answer(request, path_params, key)
        except Exception as error:
            handler = self._handler_for(error)
            if handler is None:
                raise
            response = handler(request, error)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _handler_for(self, error: Exception) -> Callable[..., Any] | None:
        """The handler the app registered for `error`'s class, as FastAPI's
        exception middleware would find it."""
        handlers = self.fastapi.exception_handlers
        for kind in type(error).__mro__:
            if kind in handlers and kind is not Exception:
                return handlers[kind]
        return None
