"""Memory a worker frees goes back to the system: glibc's allocator, tuned once and trimmed on unload.

A worker that loads and unloads models would otherwise keep growing. glibc serves a large block
(a model's weight, an encoder's activations) from its own memory map only while the block is larger
than its mmap threshold, and it raises that threshold to the size of every such block freed; after
the first model is unloaded, the next model's weights land in the heap, where the holes they leave
are seldom handed back. A fixed threshold keeps large blocks in maps of their own (`munmap` on free
returns them at once); `malloc_trim` then returns the heap's free pages. See bench/model_memory.py.

Only ctypes is imported here: gunicorn's config calls `tune_allocator` in each worker after fork,
before the app, torch or CTranslate2 allocate anything.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Mapping

#: mallopt's parameter number for the mmap threshold (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
#: environment variables through which an operator sets glibc's threshold himself (left alone then)
_OPERATOR_VARIABLES = ("MALLOC_MMAP_THRESHOLD_",)
_OPERATOR_TUNABLE = "glibc.malloc.mmap_threshold"


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is left as it is
        return None


_LIBC = _glibc()


def tune_allocator(mmap_threshold_kb: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap threshold at `mmap_threshold_kb` KiB for this process; whether it was set.

    Nothing is changed for 0, without glibc, or when the operator set the threshold through glibc's
    own environment variables (they take precedence over the server's default)."""
    if _LIBC is None or mmap_threshold_kb <= 0:
        return False
    if any(name in environ for name in _OPERATOR_VARIABLES):
        return False
    if _OPERATOR_TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return False
    return _LIBC.mallopt(M_MMAP_THRESHOLD, mmap_threshold_kb * 1024) == 1


def release_memory() -> None:
    """Free an unloaded model's memory now: collect reference cycles (torch modules keep some), then
    hand the allocator's free pages back to the system (glibc keeps them otherwise)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
