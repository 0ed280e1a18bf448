"""Seals on generated files: a file qmcu (or the compiler under SCons) wrote is used only as written.

SCons decides whether to rebuild a target from its sources, never from the target's own bytes, so a
hand-edited or truncated generated file would be used as it is. After every step qmcu records the
sha256 of each file it produced in a hidden sibling (``.<name>.sha256``); before a build starts, every
generated file whose content no longer matches its seal (or that has none) is deleted, so SCons
regenerates it from its inputs. A generated file is therefore always either what its inputs make, or
absent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from qmcu import atomic

logger = logging.getLogger(__name__)


def seal_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record(path: Path) -> None:
    """Seal a file just produced (a no-op for a target the step did not write)."""
    if path.is_file():
        atomic.write_text(seal_path(path), file_sha256(path) + "\n")


def is_intact(path: Path) -> bool:
    seal = seal_path(path)
    try:
        return seal.read_text().strip() == file_sha256(path)
    except OSError:
        return False


def discard_unsealed(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Delete every existing generated file that does not match its seal: (edited, unsealed) lists."""
    edited: list[Path] = []
    unsealed: list[Path] = []
    for path in dict.fromkeys(paths):
        if not path.is_file() or is_intact(path):
            continue
        (edited if seal_path(path).is_file() else unsealed).append(path)
        path.unlink()
        seal_path(path).unlink(missing_ok=True)
    return edited, unsealed
