"""One model path, without a build: built-in names are model files or committed folders, the generic
steps name no model, a seed tutorial on another network is refused, image parts' verdicts merge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_files import CIRCLE
from qmcu.codegen.quantize_step import quantize_file_step
from qmcu.errors import QmcuError
from qmcu.modelref import ALIASES, COMMITTED
from qmcu.options import parse_options
from qmcu.paths import PACKAGE_DIR, REPO_ROOT


def test_built_in_names_are_model_files_or_committed_folders() -> None:
    trained = parse_options({"model": "trained"})
    assert trained.model_file == REPO_ROOT / "examples" / "xor.py" and trained.committed is None
    assert trained.kind.seed_tutorial and trained.modes == ("xor", "exhaustive")
    digits = parse_options({"model": "digits"})
    assert digits.model_file == ALIASES["digits"] and digits.modes == ("test", "exhaustive")
    textbook = parse_options({"model": "textbook"})
    assert textbook.model_file is None and textbook.committed == COMMITTED["textbook"]
    assert textbook.kind.seed_tutorial and textbook.testset == COMMITTED["textbook"] / "testset.npz"
    assert parse_options({"model": "digits-committed"}).modes == ("test",)  # 64 inputs: no exhaustive mode
    with pytest.raises(QmcuError, match=r"^mode='exhaustive' is not valid; use one of test$"):
        parse_options({"model": "digits-committed", "mode": "exhaustive"})


def test_generic_steps_name_no_model() -> None:
    """Adding a model is adding a file: the build graph, the pipeline, the vectors and the judge have no
    branch for a particular model (the firmware has one application)."""
    for module in ("sconsbuild.py", "codegen/quantize_step.py", "codegen/vectors.py", "judge/verdict.py",
                   "judge/run_and_judge.py"):
        text = (PACKAGE_DIR / module).read_text()
        for word in ("textbook", "EXAMPLES", "xor_app", "mlp_app", "digits-committed", '"trained"'):
            assert word not in text, f"{module} names {word}"
    assert sorted(p.name for p in (REPO_ROOT / "firmware" / "app").glob("*.cpp")) == ["model_app.cpp"]


def test_seed_tutorial_on_another_network_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "circle.py"
    path.write_text(CIRCLE.replace('name = "circle"', 'name = "circle"\nseed_tutorial = True'))
    with pytest.raises(QmcuError, match=r"^model circle declares seed_tutorial = True but is not the tutorial's "
                                        r"network .*; drop seed_tutorial from the model file$"):
        quantize_file_step(path, None, tmp_path / "out" / "intmodel.json", tmp_path / "out" / "testset.npz")
    assert not (tmp_path / "out").exists()


def test_the_parts_verdicts_merge_in_order_naming_the_image() -> None:
    from qmcu.judge.verdict import Verdict, merge_parts

    def verdict(n: int, correct: int, problems: list[str]) -> Verdict:
        return Verdict(model="m", mode="test", unit="instructions", inferences=n, correct=correct,
                       reference_correct=correct, labelled=n, predictions=[1] * n, outputs=[[1]] * n,
                       bit_exact=not problems, mismatches=len(problems),
                       first_mismatches=[{"index": 0, "inputs": [0], "target": [1], "reference": [2]}] if problems else [],
                       counts=[5] * n, layer_counts={"l": 5}, stack_bytes=100 * n, status=0, problems=problems)

    merged = merge_parts([verdict(3, 2, []), verdict(2, 1, ["1 of 2 outputs differ"])], [0, 3])
    assert (merged.inferences, merged.correct, merged.labelled, merged.mismatches) == (5, 3, 5, 1)
    assert not merged.bit_exact and merged.stack_bytes == 300 and len(merged.counts) == 5
    assert merged.problems == ["image 2 of 2 (rows from 3): 1 of 2 outputs differ"]
    assert merged.first_mismatches[0]["index"] == 3  # the index in the whole test set
