"""The allocator around a model's load: its large blocks keep mappings of their own, requests' don't."""

from __future__ import annotations

import subprocess
import sys

import pytest

from whisper_api.engine import memory
from whisper_api.server_process import ROOT

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="glibc only")

# In a fresh process, after a 4 MiB block was freed (glibc's adaptive threshold rose to 4 MiB):
# how many 1 MiB blocks get a mapping of their own (mallinfo2's hblks) during a model's load, and
# after it (a request's buffers).
PROBE = """
import ctypes, sys
from whisper_api.engine.memory import loading_model

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2

def mapped_apart(size):
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    apart = libc.mallinfo2().hblks - before
    libc.free(block)
    return apart

libc.free(libc.malloc(4 << 20))
with loading_model(int(sys.argv[1])):
    print(mapped_apart(1 << 20))
print(mapped_apart(1 << 20), mapped_apart(40 << 20))
"""


def run_fresh(code: str, argument: int, **env: str) -> list[str]:
    """`code` in a fresh interpreter (its allocator untouched) with `argument`; its output's words."""
    environ = {"PATH": "/usr/bin:/bin", **env}
    done = subprocess.run([sys.executable, "-c", code, str(argument)], env=environ, cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.split()


def probe(threshold_kb: int, **env: str) -> list[str]:
    return run_fresh(PROBE, threshold_kb, **env)


def test_weights_loaded_get_mappings_of_their_own_and_request_buffers_do_not() -> None:
    assert probe(256) == ["1", "0", "1"]


def test_with_glibc_own_threshold_later_weights_land_in_the_heap() -> None:
    assert probe(0) == ["0", "0", "1"]


def test_the_operator_glibc_variables_take_precedence() -> None:
    assert probe(256, MALLOC_MMAP_THRESHOLD_="8388608") == ["0", "0", "1"]
    assert probe(256, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=8388608") == ["0", "0", "1"]


# In a fresh process: eight threads each allocate while the others hold their blocks; glibc's
# malloc_info lists one <heap> per arena in use.
ARENAS = """
import ctypes, sys, tempfile, threading
from whisper_api.engine.memory import limit_arenas

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
print(limit_arenas(int(sys.argv[1])))
barrier = threading.Barrier(8)

def hold():
    libc.malloc(1000)
    barrier.wait()

threads = [threading.Thread(target=hold) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(out.name).read().count("<heap nr="))
"""


def arenas(count: int, **env: str) -> list[str]:
    return run_fresh(ARENAS, count, **env)


def test_a_worker_s_threads_share_at_most_the_arenas_set() -> None:
    limited, free = arenas(2), arenas(0)
    assert limited == ["True", "2"]
    assert free[0] == "False" and int(free[1]) > 2  # glibc's own: more arenas for the threads


def test_the_operator_arena_variable_takes_precedence() -> None:
    assert arenas(2, MALLOC_ARENA_MAX="3") == ["False", "3"]
