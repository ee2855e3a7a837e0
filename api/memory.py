"""Giving the C heap's free memory back to the system after a large piece of work.

A 100,000-target mailing plan frees almost everything it built when it ends, but
glibc keeps the freed blocks of its heaps (one per thread that allocated) for
later. `malloc_trim` returns those pages: after a plan, in-process, RSS went
from 157 to 116 MB with it (what stays is pymalloc arenas that still hold a few
live objects). It walks the heaps, a few milliseconds, so it is called after
large jobs only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Returns the heap's free pages to the system; False where libc cannot (not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
