"""Worker processes start without importing the parent's command line."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from api import spawning
from api.spawning import spawn_context


def _main_module_and_cli() -> tuple[str | None, bool]:
    main = sys.modules["__mp_main__"]
    return getattr(main, "__file__", None), "api.cli" in sys.modules


@pytest.fixture
def cli_as_main() -> Iterator[None]:
    """This process's `__main__` named as under `crm`: the command line's module."""
    main = sys.modules["__main__"]
    saved = getattr(main, "__spec__", None)
    main.__spec__ = importlib.util.find_spec("api.cli")
    try:
        yield
    finally:
        main.__spec__ = saved


def test_a_pool_worker_imports_the_small_module_not_the_command_line(
    cli_as_main: None,
) -> None:
    with ProcessPoolExecutor(1, mp_context=spawn_context()) as pool:
        main_file, imported_cli = pool.submit(_main_module_and_cli).result(timeout=60)

    assert main_file == spawning.__file__
    assert not imported_cli
    assert sys.modules["__main__"].__spec__.name == "api.cli"  # given back
