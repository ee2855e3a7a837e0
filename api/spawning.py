"""Worker processes started by spawn, without the parent's command line.

A spawned process first imports its parent's `__main__`. Under `crm` that is
the script and the whole command line: typer and the audit tools, 9 MB of the
new process's memory and 50 ms of its CPU that a worker, which imports what it
needs itself, never uses (measured for the ingest worker). While a process
starts, `__main__` here names this module instead, which imports nothing but
the standard library.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any


@contextmanager
def main_module_named(name: str) -> Iterator[None]:
    """While a process starts, `__main__` names the module `name`: the new
    process imports that module as its main, not the parent's script."""
    main = sys.modules["__main__"]
    saved = getattr(main, "__spec__", None)
    main.__spec__ = importlib.util.find_spec(name)
    try:
        yield
    finally:
        main.__spec__ = saved


class _LeanSpawnProcess(SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        with main_module_named(__name__):
            return SpawnProcess._Popen(process_obj)


class LeanSpawnContext(SpawnContext):
    """The spawn context, whose processes import this module as their main."""

    Process = _LeanSpawnProcess


def spawn_context() -> LeanSpawnContext:
    """For `ProcessPoolExecutor(mp_context=...)` and the like."""
    return LeanSpawnContext()
