"""What `model=` names, known without running anything: a built-in alias, a committed folder, or a model
file (read by its syntax tree, so the build graph knows its name and options before any torch).

The built-in model names (the `model=` option). Every one is a model file or a committed folder;
adding a model means adding a file, not code.

  trained           examples/xor.py: the seed tutorial's 2-4-1 XOR MLP, trained with PyTorch (default)
  digits            examples/digits.py: a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits
  textbook          firmware/models/textbook: examples/xor_textbook.py frozen (the seed's exact solution)
  digits-cnn        examples/digits_cnn.py: a small CNN (conv, depthwise, residual add, pooling) on the digits
  kws               examples/kws_dscnn.py: MLPerf Tiny's keyword-spotting DS-CNN (seeded weights, synthetic inputs)
  digits-cnn-committed, kws-committed  firmware/models/digits_cnn, kws_dscnn: those two frozen (the matrix's)
  digits-committed  firmware/models/digits: examples/digits.py frozen, so the matrix's and the bench's
                    exact budgets do not depend on how a CPU rounds PyTorch's float arithmetic
A committed folder holds intmodel.json, testset.npz and the headers qmcu emits for them; it is
regenerated with `qmcu freeze <model file> <folder>` (its source below).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from qmcu.errors import QmcuError
from qmcu.paths import EXAMPLES_DIR, FIRMWARE_DIR

ALIASES = {"trained": EXAMPLES_DIR / "xor.py", "digits": EXAMPLES_DIR / "digits.py",
           "digits-cnn": EXAMPLES_DIR / "digits_cnn.py", "kws": EXAMPLES_DIR / "kws_dscnn.py"}
COMMITTED = {"textbook": FIRMWARE_DIR / "models" / "textbook", "digits-committed": FIRMWARE_DIR / "models" / "digits",
             "digits-cnn-committed": FIRMWARE_DIR / "models" / "digits_cnn",
             "kws-committed": FIRMWARE_DIR / "models" / "kws_dscnn"}
# The model file each committed folder is frozen from.
COMMITTED_SOURCE = {"textbook": EXAMPLES_DIR / "xor_textbook.py", "digits-committed": EXAMPLES_DIR / "digits.py",
                    "digits-cnn-committed": EXAMPLES_DIR / "digits_cnn.py", "kws-committed": EXAMPLES_DIR / "kws_dscnn.py"}
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


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
MODEL_SUFFIXES = (".py", ".pt2")


def is_model_path(value: str) -> bool:
    return value.endswith(MODEL_SUFFIXES)


# model() keyword parameters qmcu fills from its options of the same name.
TRAINING_OPTIONS = ("seed", "epochs", "lr", "max_tries")


@dataclass(frozen=True)
class Declared:
    """What a model file declares, read without running it (the build graph needs it before any torch)."""

    name: str
    seed_tutorial: bool = False
    model_params: tuple[str, ...] = ()  # the training options its model() takes


def declared(path: Path) -> Declared:
    """Top-level `name = "..."` (else the file's stem), `seed_tutorial = True`, and model()'s parameters."""
    name, seed, params = path.stem, False, ()
    if path.suffix == ".py":
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except (OSError, SyntaxError, ValueError) as err:
            raise QmcuError(f"model file {path} cannot be read as Python ({err})", "fix the file") from err
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id in ("name", "seed_tutorial")):
                key, value = node.targets[0].id, node.value
                want = str if key == "name" else bool
                if not (isinstance(value, ast.Constant) and isinstance(value.value, want)):
                    raise QmcuError(f"model file {path}: `{key}` must be a {want.__name__} literal",
                                    'write name = "mymodel"' if key == "name" else "write seed_tutorial = True")
                if key == "name":
                    name = value.value
                else:
                    seed = value.value
            if isinstance(node, ast.FunctionDef) and node.name == "model":
                args = node.args
                params = tuple(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                               if a.arg in TRAINING_OPTIONS)
    if not _NAME.match(name):
        raise QmcuError(f"model name {name!r} (from {path.name}) is not usable as a folder and C++ string",
                        "use letters, digits, '-' and '_' (up to 40), starting with a letter")
    return Declared(name, seed, params)


def declared_name(path: Path) -> str:
    return declared(path).name
