"""Run the real SCons build in a subprocess, with a chosen build directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from qmcu.paths import REPO_ROOT

SCONS = Path(sys.executable).with_name("scons")


def scons(build_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QMCU_BUILD_DIR": str(build_dir)}
    return subprocess.run([str(SCONS), "-C", str(REPO_ROOT), "-Q", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def report(build_dir: Path, board: str, corner: str = "std0-float0", suffix: str = "",
           name: str = "report.json") -> dict[str, Any]:
    return json.loads((build_dir / f"{board}-{corner}{suffix}" / name).read_text())


def one_error_line(proc: subprocess.CompletedProcess[str], match: str) -> str:
    """The process failed with exactly one `qmcu: error:` line matching `match`, and no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("qmcu: error:")]
    assert len(errors) == 1, proc.stderr
    assert re.search(match, errors[0]), errors[0]
    return errors[0]
