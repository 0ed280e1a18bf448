"""Shared fixtures: the repo paths, a host C++ compiler helper, and the textbook integer model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qmcu import intmodel
from qmcu.paths import FIRMWARE_DIR, REPO_ROOT, RUNTIME_INCLUDE, TEXTBOOK_HEADER

WARNINGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fno-exceptions", "-fno-rtti"]


def compile_host(src: Path, out: Path, defines: dict[str, int] | None = None, extra: list[str] | None = None,
                 includes: list[Path] | None = None) -> Path:
    """Compile a host C++ program against the runtime headers with the project's warning flags."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (tools/setup.sh installs it)")
    cmd = ["g++", *WARNINGS, "-O2", f"-I{RUNTIME_INCLUDE}", f"-I{FIRMWARE_DIR / 'app'}",
           *[f"-I{p}" for p in includes or []], *[f"-D{k}={v}" for k, v in (defines or {}).items()],
           *(extra or []), str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"compile failed: {' '.join(cmd)}\n{proc.stderr}"
    return out


@pytest.fixture(scope="session")
def textbook_model() -> intmodel.IntModel:
    return intmodel.load(TEXTBOOK_HEADER.with_name("intmodel.json"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
