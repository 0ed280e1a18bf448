"""Runner for the host board: execute the native program and collect what it prints. Never judges."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

from ..errors import QmcuError
from .result import RunResult, last_lines

logger = logging.getLogger(__name__)


def run_host(program: Path, timeout_s: float) -> RunResult:
    start = time.monotonic()
    try:
        proc = subprocess.run([str(program)], capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode("latin-1")
        raise QmcuError(f"{program.name} did not finish within {timeout_s:g}s; last lines: {last_lines(out)}",
                        "raise timeout= or look for an endless loop") from err
    text = proc.stdout.decode("latin-1") + proc.stderr.decode("latin-1")
    return RunResult(exit_code=proc.returncode, output_text=text, wall_s=time.monotonic() - start)
