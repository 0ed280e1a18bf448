"""Repository promises: the committed textbook model is a fresh emission, CI runs the README's test line,
and generated files stay out of the source tree."""

from __future__ import annotations

import re
import subprocess

from qmcu.paths import REPO_ROOT, TEXTBOOK_HEADER
from qmcu.quant.intmodel import IntModel


def test_committed_textbook_files_equal_a_fresh_emission() -> None:
    """firmware/models/textbook is examples/xor_textbook.py frozen: same integers, headers emitted from them."""
    from qmcu.codegen.quantize_step import freeze

    assert freeze(REPO_ROOT / "examples" / "xor_textbook.py", TEXTBOOK_HEADER.parent, check=True) == []


def test_textbook_model_is_the_seed_solution(textbook_model: IntModel) -> None:
    fc1, fc2 = textbook_model.dense("fc1"), textbook_model.dense("fc2")
    assert (textbook_model.input_scale, textbook_model.input_zero_point) == (float.fromhex("0x1.010102p-8"), -128)
    assert abs(textbook_model.input_scale - 1 / 255) < 1e-9
    assert abs(fc1.output_scale - 2 / 255) < 1e-9 and fc1.output_zero_point == -128
    assert abs(fc2.output_scale - 4 / 255) < 1e-9 and fc2.output_zero_point == -1
    assert fc1.weights == [127] * 8  # all ones at scale 1/127
    assert fc1.bias == [0, -32385, 0, -32385]  # [0, -1, 0, -1] at (1/255)*(1/127)


def test_ci_runs_the_readme_test_line_verbatim() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.+?)\n```", readme)
    assert len(blocks) >= 2
    main_line, test_line = blocks[0], blocks[1]
    assert "scons board=qemu-m4 run" in main_line and "pytest" in test_line
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci


def test_no_generated_files_tracked() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert not [p for p in tracked.splitlines() if p.startswith(("build/", ".venv/")) or p.endswith((".o", ".elf"))]
