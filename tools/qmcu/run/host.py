"""Runner for the host board: execute the native program and collect what it prints. Never judges."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

from qmcu import interrupt
from qmcu.errors import QmcuError
from qmcu.run.result import RunResult, last_lines

logger = logging.getLogger(__name__)


def run_host(program: Path, timeout_s: float) -> RunResult:
    start = time.monotonic()
    with interrupt.started([str(program)], program.name, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            interrupt.kill_group(proc)
            out, _ = proc.communicate()
            text = (out or b"").decode("latin-1")
            raise QmcuError(f"{program.name} did not finish within {timeout_s:g}s; last lines: {last_lines(text)}",
                            "raise timeout= or look for an endless loop") from exc
    text = out.decode("latin-1") + err.decode("latin-1")
    return RunResult(exit_code=proc.returncode, output_text=text, wall_s=time.monotonic() - start)
