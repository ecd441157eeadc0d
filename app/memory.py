"""Memory given back once a large piece of work is done (an import of many thousand rows, the
report that lists them): freed objects return to the allocator, and the allocator returns the
pages it no longer uses to the system, so that a process does not stay grown after one import."""

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
_name = ctypes.util.find_library("c")
if _name is not None:
    _trim = getattr(ctypes.CDLL(_name), "malloc_trim", None)  # glibc only


def release() -> None:
    """Collects what is unreachable, then gives the free pages back (where libc can)."""
    gc.collect()
    if _trim is not None:
        _trim(0)
