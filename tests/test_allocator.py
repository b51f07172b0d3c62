"""The worker's allocator setting: large blocks keep their own mappings after a large one was freed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from whisper_api.engine import memory
from whisper_api.server_process import ROOT

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="glibc only")

# In a fresh process: free a 4 MiB block (glibc maps it apart), then ask for 1 MiB and count the
# blocks glibc keeps in mappings of their own (mallinfo2's hblks). glibc's adaptive threshold rose
# to 4 MiB with the free, so the 1 MiB block lands in the heap; a fixed threshold maps it apart.
PROBE = """
import ctypes, sys
from whisper_api.engine.memory import tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
print(tune_allocator(int(sys.argv[1])))
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - before)
libc.free(block)
"""


def probe(threshold_kb: int, **env: str) -> list[str]:
    environ = {"PATH": "/usr/bin:/bin", **env}
    done = subprocess.run([sys.executable, "-c", PROBE, str(threshold_kb)], env=environ, cwd=ROOT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.split()


def test_a_fixed_threshold_maps_large_blocks_apart_after_a_larger_one_was_freed() -> None:
    assert probe(128) == ["True", "1"]


def test_glibc_own_threshold_puts_them_in_the_heap() -> None:
    assert probe(0) == ["False", "0"]


def test_the_operator_glibc_variables_take_precedence() -> None:
    assert probe(128, MALLOC_MMAP_THRESHOLD_="8388608") == ["False", "0"]
    assert probe(128, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=8388608") == ["False", "0"]
