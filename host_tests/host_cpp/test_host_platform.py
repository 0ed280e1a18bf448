"""The host platform layer built with the host g++."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from platform_apps import PROGRAMS
from qmcu.boards import Corner
from qmcu.build import cross

# --- the host platform ---------------------------------------------------------------------------


def test_host_platform(tmp_path: Path) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed (tools/setup.sh installs it)")
    for status in (0, 2):
        exe = cross.host_build(Corner(0, 1), [PROGRAMS / "hello.cpp"], tmp_path / f"hello{status}" / "hello",
                               defines={"APP_STATUS": str(status)}, include_dirs=[PROGRAMS])
        proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
        assert proc.returncode == status
        assert proc.stdout == "qmcu platform ok\ncounter 0 0\ninit 42 7 0\nfloat 337\nkernel 22\nstack 0\n"
