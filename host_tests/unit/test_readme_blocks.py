"""Docs that cannot drift: the README's generated blocks are marked and known, numbers are masked, not words,
and the matrix table committed beside the budgets shows exactly the budgeted instruction counts."""

from __future__ import annotations

import json
import re

from qmcu import readme
from qmcu.paths import REPO_ROOT

BUDGETS = REPO_ROOT / "boards" / "budgets"


def test_every_marked_block_is_known_and_fenced() -> None:
    found = readme.blocks_in(readme.README.read_text())
    assert sorted(found) == sorted(readme.BLOCKS)
    for first, end in found.values():
        assert end > first


def test_shape_masks_figures_not_words() -> None:
    assert readme.shape("instructions per inference: min 119 median 119 max 119") == \
        readme.shape("instructions per inference: min 2894 median 2894.5 max 2901")
    assert readme.shape("q_logit=-126  prob=0.0039") == readme.shape("q_logit=98  prob=0.8828")
    assert readme.shape("difference histogram {-1: 6, 0: 18} (within +-1 LSB)") == \
        readme.shape("difference histogram {0: 24} (within +-1 LSB)")
    assert readme.shape("1685/1685 bit-exact") != readme.shape("1685/1685 NOT bit-exact")


def test_the_committed_matrix_table_shows_the_budgeted_counts() -> None:
    table = (BUDGETS / "MATRIX.md").read_text()
    rows = [r.split("|")[1:-1] for r in table.splitlines() if r.startswith("| qemu")]
    shown: dict[str, set[str]] = {}
    for r in rows:
        figures = r[6].strip().split("/")
        if len(figures) == 3:  # min/median/max; a budget keeps the median's integer part (x.5 for an even count)
            figures[1] = str(int(float(figures[1])))
        shown.setdefault(r[0].strip(), set()).add("/".join(figures))
    for path in sorted(BUDGETS.glob("*.json")):
        doc = json.loads(path.read_text())
        want = {f"{c['instructions_min']}/{c['instructions_median']}/{c['instructions_max']}"
                for c in doc["cells"].values()}
        assert shown.get(doc["board"]) == want, f"{path.name}: MATRIX.md is not the run that wrote these budgets"
    assert re.search(r"\[.*\]\(boards/budgets/MATRIX\.md\)", readme.README.read_text())
