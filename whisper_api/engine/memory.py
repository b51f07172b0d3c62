"""Memory a worker frees goes back to the system: model weights in mappings of their own, and trims.

A worker that loads and unloads models would otherwise keep growing. glibc serves a large block
from a memory map of its own only while the block is larger than its mmap threshold, and it raises
that threshold (up to 32 MiB) to the size of every such block freed: after the first requests, the
next model's weights land in the heap, where the holes they leave when it is unloaded are seldom
handed back. So while a model loads, the threshold is held low (its weights get maps of their own,
which `munmap` returns whole on unload), and afterwards set to glibc's own ceiling, where requests
leave it anyway (a low threshold for every request costs them dearly: each activation buffer would be
mapped and faulted in afresh; bench/allocator.py). `malloc_trim` returns the heap's free pages after
an unload. See bench/model_memory.py.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
#: the threshold while serving: glibc's ceiling for its adaptive one, and the trim threshold glibc
#: pairs with it (free heap above it goes back at once; below it, at the next `release_memory`)
SERVING_MMAP_THRESHOLD = 32 << 20
SERVING_TRIM_THRESHOLD = 2 * SERVING_MMAP_THRESHOLD
#: environment variables through which an operator tunes glibc himself (left alone then)
_OPERATOR_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
_OPERATOR_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")
_OPERATOR_ARENAS = ("MALLOC_ARENA_MAX", "glibc.malloc.arena_max")


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): its allocator is left as it is
        return None


_LIBC = _glibc()


def operator_tuned(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether glibc's thresholds were set through its own environment variables (they win)."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    variables = any(name in environ for name in _OPERATOR_VARIABLES)
    return variables or any(tunable in tunables for tunable in _OPERATOR_TUNABLES)


def limit_arenas(count: int, environ: Mapping[str, str] = os.environ) -> bool:
    """At most `count` malloc arenas in this process (0: glibc's own, eight per core), unless the
    operator set them. glibc gives threads arenas of their own; CTranslate2's threads and the
    request threads each free their activation buffers into one, where the space stays: with the
    default, one worker peaked at 713 MiB over four ref71 requests, with 2 at 579 MiB, at the
    same speed (bench in issue #17's note). Called in a new worker before its threads start."""
    if _LIBC is None or count <= 0:
        return False
    if _OPERATOR_ARENAS[0] in environ or _OPERATOR_ARENAS[1] in environ.get("GLIBC_TUNABLES", ""):
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


class _Loads:
    """Loads in flight in this process: the threshold is low while any runs (the allocator is shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def weights_mapped(self, threshold_kb: int) -> Iterator[None]:
        if _LIBC is None or threshold_kb <= 0 or operator_tuned():
            yield
            return
        with self._lock:
            self._count += 1
            _LIBC.mallopt(M_MMAP_THRESHOLD, threshold_kb * 1024)
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
                if self._count == 0:
                    _LIBC.mallopt(M_MMAP_THRESHOLD, SERVING_MMAP_THRESHOLD)
                    _LIBC.mallopt(M_TRIM_THRESHOLD, SERVING_TRIM_THRESHOLD)


#: `with loading_model(settings.malloc_mmap_threshold_kb):` around a model's load
loading_model = _Loads().weights_mapped


def release_memory() -> None:
    """Free an unloaded model's memory now: collect reference cycles (torch modules keep some), then
    hand the allocator's free pages back to the system (glibc keeps them otherwise)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
