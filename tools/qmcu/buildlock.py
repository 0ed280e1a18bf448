"""One qmcu build at a time per build folder: an advisory lock held for the whole SCons run.

Two runs in one build folder would otherwise interleave their artifacts (one run's model compiled
into the other's image). The lock is an flock on ``<build>/.qmcu.lock``: the kernel drops it when the
process ends, however it ends, so a killed run never leaves the folder locked.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

_held: dict[Path, IO[str]] = {}
POLL_S = 0.2


def _holder(f: IO[str]) -> str:
    f.seek(0)
    pid = f.read().strip()
    return f"pid {pid}" if pid.isdigit() else "pid unknown"


def acquire(build_dir: Path) -> None:
    """Block until this process holds the build folder's lock (idempotent within one process)."""
    build_dir = build_dir.resolve()
    if build_dir in _held:
        return
    build_dir.mkdir(parents=True, exist_ok=True)
    f = (build_dir / ".qmcu.lock").open("a+")
    told = False
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not told:
                print(f"qmcu: waiting for another qmcu run on {build_dir} ({_holder(f)})", file=sys.stderr, flush=True)
                told = True
            time.sleep(POLL_S)
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    _held[build_dir] = f


def release(build_dir: Path) -> None:
    f = _held.pop(build_dir.resolve(), None)
    if f is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
