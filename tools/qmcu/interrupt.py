"""Ctrl-C and SIGTERM stop every child at once: QEMU, the serial reader, host programs, flashers.

Every runner starts its children through start() or started() (which register them), and register()s
anything else that must be stopped, such as a serial port a reader thread is blocked on. stop_all_and_exit(signum)
kills every registered child's process group, closes every registered port, prints one line

    qmcu: interrupted by SIGINT: stopped QEMU netduinoplus2 (pid 123), serial reader on socket://...

and leaves with exit code 128 + signum through os._exit: no Python cleanup runs, so nothing is written
after the signal (reports are only ever written whole, see atomic.py), and no thread can keep the
process alive. Children run in their own process group (start()), so a Ctrl-C at the terminal
reaches qmcu only, and qmcu decides what stops: the firmware never sees a half-dead emulator, and
the run is never judged on the stream the signal cut off. They also die with their parent thread
(PR_SET_PDEATHSIG), so not even a SIGKILL of qmcu leaves an emulator running.

install_handlers() points SIGINT, SIGTERM and SIGHUP at stop_all_and_exit (main thread only);
patch_scons() makes SCons do the same in place of its own handler, which waits for the running
step to finish (up to a whole timeout= of a hung run).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

# What stop_all_and_exit() stops, by registration key: a description, how to stop it, and the child to reap.
_running: dict[int, tuple[str, Callable[[], None], subprocess.Popen[Any] | None]] = {}
_keys = itertools.count(1)
# How long stop_all_and_exit() waits for killed children to be reaped before it exits anyway.
REAP_S = 1.0
_PR_SET_PDEATHSIG = 1
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# Threads now inside start(): a signal that lands between a child's exec and its registration waits
# (in _pending) until the child is registered, so it is stopped and named like any other.
_starting: set[int] = set()
_pending: list[int] = []


def register(what: str, stop: Callable[[], None], proc: subprocess.Popen[Any] | None = None) -> int:
    """Remember something to stop on a signal (proc: the child that stop kills); returns the key for unregister()."""
    key = next(_keys)
    _running[key] = (what, stop, proc)
    return key


def unregister(key: int) -> None:
    _running.pop(key, None)


def running() -> list[str]:
    """What a signal would stop now, in the order it was started."""
    return [entry[0] for _, entry in sorted(_running.items())]


def _child_setup() -> None:
    # In the child, before exec: die with the thread that started us (even on a SIGKILL of qmcu).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def popen_kwargs(preexec: Callable[[], None] | None = None) -> dict[str, Any]:
    """Popen arguments for a child that stop_all_and_exit() can stop with its whole process group.

    The child leads a new process group (so a terminal's Ctrl-C reaches qmcu, not the child) and gets
    SIGKILL when the thread that started it ends; preexec, if given, also runs in the child before exec.
    """

    def setup() -> None:
        _child_setup()
        if preexec is not None:
            preexec()

    return {"process_group": 0, "preexec_fn": setup}


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's process group (it leads one, see popen_kwargs), or the child alone if it does not."""
    if proc.poll() is not None:
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def start(argv: list[str], what: str, preexec: Callable[[], None] | None = None,
          **kwargs: Any) -> tuple[subprocess.Popen[Any], int]:
    """Popen argv (kwargs as for Popen) in its own process group and register it as "<what> (pid N)".

    A signal that arrives while the child starts is held until it is registered, then handled: so a
    Ctrl-C never finds an emulator that is already running but not yet known. Returns the child and
    the key for unregister().
    """
    thread = threading.get_ident()
    _starting.add(thread)
    try:
        proc = subprocess.Popen(argv, **kwargs, **popen_kwargs(preexec))
        key = register(f"{what} (pid {proc.pid})", lambda: kill_group(proc), proc)
    finally:
        _starting.discard(thread)
        if _pending and not _starting:
            stop_all_and_exit(_pending[0])
    return proc, key


@contextlib.contextmanager
def started(argv: list[str], what: str, preexec: Callable[[], None] | None = None,
            **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """start() the child for the block; a child still running when the block ends (an exception, say) is killed."""
    proc, key = start(argv, what, preexec, **kwargs)
    with proc:  # Popen's own exit (close the pipes, wait) comes after the kill below
        try:
            yield proc
        finally:
            unregister(key)
            if proc.poll() is None:
                kill_group(proc)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=REAP_S)


@contextlib.contextmanager
def registered(what: str, stop: Callable[[], None]) -> Iterator[None]:
    """Register stop (a port's close, say) while the block runs."""
    key = register(what, stop)
    try:
        yield
    finally:
        unregister(key)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stop_all_and_exit(signum: int, frame: object = None) -> NoReturn:
    """Stop everything registered, say so in one line, and exit with 128 + signum at once (os._exit)."""
    # No lock: this runs in the main thread between two bytecodes, possibly inside register().
    items = [entry for _, entry in sorted(_running.items())]
    for _what, stop, _proc in items:
        with contextlib.suppress(Exception):
            stop()
    stopped = ", ".join(what for what, _stop, _proc in items) or "nothing was running"
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.write(f"qmcu: interrupted by {signal_name(signum)}: stopped {stopped}\n")
        sys.stderr.flush()
    # Reap what was killed (SIGKILL: at once), so no zombie outlives us; never wait past REAP_S in all.
    # os.waitpid, not Popen.wait: the interrupted code may hold the Popen's own wait lock.
    deadline = time.monotonic() + REAP_S
    for _what, _stop, proc in items:
        if proc is not None:
            _reap(proc.pid, deadline)
    os._exit(128 + signum)


def _reap(pid: int, deadline: float) -> None:
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # already reaped
        if done or time.monotonic() >= deadline:
            return
        time.sleep(0.005)


def on_signal(signum: int, frame: object = None) -> None:
    """The signal handler: stop everything now, or once the child being started is registered (see start())."""
    if _starting:
        _pending.append(signum)
        return
    stop_all_and_exit(signum, frame)


def install_handlers() -> None:
    """SIGINT, SIGTERM and SIGHUP stop everything at once (call from the main thread, e.g. the qmcu CLI)."""
    for sig in HANDLED:
        signal.signal(sig, on_signal)


def patch_scons() -> None:
    """Make SCons's job runner install our handler in place of its own, which waits for the running step.

    Call it once before the build starts (sconsbuild.setup()). SCons saves and restores the previous
    handlers around the build exactly as before; only what a signal does in between changes.
    """
    from SCons.Taskmaster import Job

    if getattr(Job.Jobs, "_qmcu_patched", False):
        return

    def setup(self: Any) -> None:
        parent = os.getpid()

        def handler(signum: int, frame: object) -> None:
            if os.getpid() != parent:  # a forked child of SCons: leave at once, as SCons's own handler does
                os._exit(2)
            on_signal(signum, frame)

        self.old_sigint = signal.signal(signal.SIGINT, handler)
        self.old_sigterm = signal.signal(signal.SIGTERM, handler)
        self.old_sighup = signal.signal(signal.SIGHUP, handler)

    Job.Jobs._setup_sig_handler = setup
    Job.Jobs._qmcu_patched = True
