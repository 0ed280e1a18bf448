"""Where things live in the source tree (the package runs from an editable install of the repo)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # tools/qmcu: the stage folders below it
REPO_ROOT = PACKAGE_DIR.parents[1]
BOARDS_DIR = REPO_ROOT / "boards"
FIRMWARE_DIR = REPO_ROOT / "firmware"
RUNTIME_INCLUDE = FIRMWARE_DIR / "runtime"
TEXTBOOK_HEADER = FIRMWARE_DIR / "models" / "textbook" / "weights.hpp"  # the seed tutorial's header, committed
# QMCU_BUILD_DIR moves every generated file elsewhere (tests use it for clean builds).
BUILD_DIR = Path(os.environ.get("QMCU_BUILD_DIR", REPO_ROOT / "build")).resolve()
