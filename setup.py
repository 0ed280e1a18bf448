"""The wheel carries the project's data as package data, qmcu/data/: the top-level items that qmcu.paths.DATA_ITEMS
names (SConstruct, boards/, examples/, firmware/), copied from where they are, so the source layout stays as it is.

Everything else is in pyproject.toml. This hook adds the items to build_py's data files, so a wheel (and an sdist)
holds them; an editable install reads them in the checkout and copies nothing.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _data_items() -> tuple[str, ...]:
    """The one list of what is data lives in qmcu.paths: read it without importing the package (no dependencies yet)."""
    for node in ast.parse((ROOT / "tools" / "qmcu" / "paths.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["DATA_ITEMS"]:
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("tools/qmcu/paths.py defines no DATA_ITEMS")


def _files(item: str) -> list[str]:
    """The files of one item, relative to the project root; no caches, no hidden files."""
    top = ROOT / item
    if top.is_file():
        return [item]
    found = []
    for folder, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        found += [str(Path(folder, n).relative_to(ROOT)) for n in sorted(names)
                  if not n.startswith(".") and not n.endswith((".pyc", ".pyo"))]
    return found


class BuildPyWithData(build_py):
    def _project_data(self) -> list[tuple[str, str, str, list[str]]]:
        if self.editable_mode:
            return []
        files = [f for item in _data_items() for f in _files(item)]
        return [("qmcu.data", os.path.relpath(ROOT), os.path.join(self.build_lib, "qmcu", "data"), files)]

    def _get_data_files(self):  # type: ignore[no-untyped-def]
        return [*super()._get_data_files(), *self._project_data()]

    def get_data_files_without_manifest(self):  # type: ignore[no-untyped-def]
        return [*super().get_data_files_without_manifest(), *self._project_data()]

    def run(self) -> None:
        if not self.editable_mode:  # a file deleted from the tree must not live on in the wheel from an earlier build
            shutil.rmtree(os.path.join(self.build_lib, "qmcu"), ignore_errors=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithData})
