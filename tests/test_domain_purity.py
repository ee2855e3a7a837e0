"""domain/ stays pure: no I/O, web, SQL or logging imports."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "fastapi",
    "psycopg",
    "psycopg_pool",
    "sqlite3",
    "structlog",
    "api",
    "projections",
    "requests",
    "httpx",
    "socket",
    "os",
    "subprocess",
    "pathlib",
    "open",
}


def test_domain_imports_nothing_impure() -> None:
    offenders = []
    for path in Path(__file__).parents[1].joinpath("domain").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN
            ]
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                offenders.append(f"{path.name}: open()")
    assert offenders == []
