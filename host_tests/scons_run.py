"""Run the real SCons build in a subprocess, with a chosen build directory."""

from __future__ import annotations

import json
import os
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
