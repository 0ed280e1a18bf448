"""The built-in model names (the `model=` option). Every one is a model file or a committed folder;
adding a model means adding a file, not code.

  trained           examples/xor.py: the seed tutorial's 2-4-1 XOR MLP, trained with PyTorch (default)
  digits            examples/digits.py: a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits
  textbook          firmware/models/textbook: examples/xor_textbook.py frozen (the seed's exact solution)
  digits-committed  firmware/models/digits: examples/digits.py frozen, so the matrix's and the bench's
                    exact budgets do not depend on how a CPU rounds PyTorch's float arithmetic
A committed folder holds intmodel.json, testset.npz and the headers qmcu emits for them; it is
regenerated with `qmcu freeze <model file> <folder>` (its source below).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import QmcuError
from .paths import FIRMWARE_DIR, REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "examples"
ALIASES = {"trained": EXAMPLES_DIR / "xor.py", "digits": EXAMPLES_DIR / "digits.py"}
COMMITTED = {"textbook": FIRMWARE_DIR / "models" / "textbook", "digits-committed": FIRMWARE_DIR / "models" / "digits"}
# The model file each committed folder is frozen from.
COMMITTED_SOURCE = {"textbook": EXAMPLES_DIR / "xor_textbook.py", "digits-committed": EXAMPLES_DIR / "digits.py"}
BUILT_IN = (*ALIASES, *COMMITTED)


@dataclass(frozen=True)
class ModelKind:
    """What the build graph needs to know of a model before it is quantized."""

    seed_tutorial: bool   # the seed tutorial's layer: weights.hpp, its API corner and lines, mode "xor"
    inputs: int | None = None  # known for a committed model

    @property
    def modes(self) -> tuple[str, ...]:
        """The first is the default: the test set (called `xor` by the seed tutorial), then every int8 input
        (a model of 1 or 2 inputs; a model file's width is known only once it is captured)."""
        first = "xor" if self.seed_tutorial else "test"
        return (first,) if self.inputs is not None and self.inputs > 2 else (first, "exhaustive")


def committed_kind(folder: Path) -> ModelKind:
    path = folder / "intmodel.json"
    try:
        doc = json.loads(path.read_text())
        return ModelKind(bool(doc["provenance"].get("seed_tutorial")), int(doc["input_size"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise QmcuError(f"committed model {path} cannot be read ({type(err).__name__}: {err})",
                        "restore it with git checkout, or regenerate it with `qmcu freeze`") from err
