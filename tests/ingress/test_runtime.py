"""`tiergate serve` caps glibc's malloc arenas (resident memory must level off)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's"
)

# Six threads allocate at the same time; glibc's malloc_stats() then lists the arenas.
PROBE = """
import ctypes, sys, threading
from tiergate.ingress.app import limit_malloc_arenas
if sys.argv[1] == "limit":
    print(limit_malloc_arenas(), flush=True)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(6)
def work():
    blocks = [libc.malloc(4096) for _ in range(64)]
    barrier.wait()
    for b in blocks:
        libc.free(b)
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.malloc_stats()
"""


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip(), done.stderr.count("Arena ")


def test_the_server_process_keeps_to_two_arenas():
    said, arenas = _arenas("limit")
    assert said == "True"
    assert arenas <= 2
    _, unlimited = _arenas("none")
    assert unlimited > 2  # the probe does make glibc open more where nothing caps it


def test_an_operator_setting_wins():
    said, arenas = _arenas("limit", MALLOC_ARENA_MAX="4")
    assert said == "False"  # left to glibc, which reads the variable itself
    assert 2 < arenas <= 4
