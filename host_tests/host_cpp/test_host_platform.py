"""The host platform layer built with the host g++."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from platform_apps import HELLO_APP, HOST_BOARDS, PLATFORM_INCLUDE, _run
from qmcu.boards import Corner
from qmcu.build import toolchain

# --- the host platform ---------------------------------------------------------------------------


def test_host_platform(tmp_path: Path) -> None:
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed (tools/setup.sh installs it)")
    host = HOST_BOARDS[0]
    for status in (0, 2):
        corner = Corner(0, 1)
        flags = toolchain.host_flags(corner)
        src = tmp_path / f"hello{status}.cpp"
        src.write_text(HELLO_APP)
        exe = tmp_path / f"hello{status}"
        _run(["g++", *flags.cxxflags, *flags.define_flags(), f"-DAPP_STATUS={status}", f"-I{PLATFORM_INCLUDE}",
              str(src), *map(str, toolchain.platform_sources(host, corner)), *flags.linkflags, "-o", str(exe),
              *flags.lib_flags()])
        proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
        assert proc.returncode == status
        assert proc.stdout == "qmcu platform ok\ncounter 0 0\ninit 42 7 0\nfloat 337\nkernel 22\nstack 0\n"
