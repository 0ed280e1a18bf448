"""Where things live: the project's data (firmware sources, board files, example models, SConstruct) and the
folder a command works in (build/, the user's own boards/). The one module that knows.

One layout, two ways to be installed:
  editable install of the source checkout (tools/setup.sh): DATA is the checkout, and the work folder is the
      checkout too, wherever the command runs: build/ is <checkout>/build, as it always was;
  wheel (`pip install qmcu-*.whl`, or a git URL): DATA is the package data qmcu/data/ (setup.py copies
      DATA_ITEMS into it at build time), and the work folder is the one the command runs in: build/ is created
      there, and its boards/*.json are found beside the built-in boards.
QMCU_BUILD_DIR moves every generated file elsewhere in both.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # tools/qmcu (or site-packages/qmcu): the stage folders below it
# What the package carries from the project's top level; setup.py copies exactly these into qmcu/data/.
DATA_ITEMS = ("SConstruct", "boards", "examples", "firmware")
_PACKAGED = PACKAGE_DIR / "data"
FROM_CHECKOUT = not (_PACKAGED / "SConstruct").is_file()  # a wheel carries its data; a checkout has the folders
DATA = PACKAGE_DIR.parents[1] if FROM_CHECKOUT else _PACKAGED
REPO_ROOT = DATA  # the checkout (tests and the README generator read it); in a wheel, the data of the same layout
# Where build/ goes, relative option paths (model=, calibration=) resolve, and the user's boards/ are.
WORK_DIR = DATA if FROM_CHECKOUT else Path.cwd()

SCONSTRUCT = DATA / "SConstruct"
BOARDS_DIR = DATA / "boards"  # the built-in boards, their schema and the matrix budgets
USER_BOARDS_DIR = WORK_DIR / "boards"  # the user's own; in a checkout the same folder as BOARDS_DIR
EXAMPLES_DIR = DATA / "examples"
FIRMWARE_DIR = DATA / "firmware"
RUNTIME_INCLUDE = FIRMWARE_DIR / "runtime"
TEXTBOOK_HEADER = FIRMWARE_DIR / "models" / "textbook" / "weights.hpp"  # the seed tutorial's header, committed
# QMCU_BUILD_DIR moves every generated file elsewhere (tests use it for clean builds).
BUILD_DIR = Path(os.environ.get("QMCU_BUILD_DIR", WORK_DIR / "build")).resolve()


def scons_location() -> list[str]:
    """How `scons` finds the build: in a checkout it runs there (-C), as `scons` typed in the checkout does; from a
    wheel it reads the packaged SConstruct (-f) and stays in the work folder, so SCons shows build/ paths relative
    to it."""
    return ["-C", str(DATA)] if FROM_CHECKOUT else ["-f", str(SCONSTRUCT)]
