"""Docs that cannot drift: every output block the README marks is what the tool prints (numbers masked).
Each block's command runs for real (SCons, the cross compiler, QEMU) in a fresh build folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmcu import readme


@pytest.mark.parametrize("name", sorted(readme.BLOCKS))
def test_readme_block_shows_what_the_tool_prints(name: str, tmp_path: Path) -> None:
    text = readme.README.read_text().splitlines()
    first, end = readme.blocks_in("\n".join(text))[name]
    shown = text[first:end]
    printed = readme.run_block(readme.BLOCKS[name], tmp_path)
    assert [readme.shape(ln) for ln in shown] == [readme.shape(ln) for ln in printed], (
        f"README block {name} is out of date: regenerate it with `python -m qmcu.readme`")
