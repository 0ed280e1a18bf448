"""The second built-in example: a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits.

The data set ships inside scikit-learn (no download). Pixels 0..16 are scaled to [0, 1]; a fixed,
stratified split keeps 20 % (360 images) for the held-out evaluation that runs on the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

SPLIT_SEED = 0
TEST_FRACTION = 0.2
HIDDEN = 32


@dataclass(frozen=True)
class DigitsData:
    x_train: np.ndarray  # float32 [N, 64] in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> DigitsData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target.astype(np.int64), test_size=TEST_FRACTION,
                                                        random_state=SPLIT_SEED, stratify=digits.target)
    return DigitsData(x_train, y_train, x_test, y_test)


def make_model(hidden: int = HIDDEN) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def train(data: DigitsData, seed: int = 42, epochs: int = 300, lr: float = 0.01) -> nn.Sequential:
    """Full-batch Adam with cross-entropy: deterministic on the CPU, about a second."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = make_model()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    logger.info("digits: trained %d epochs, loss %.4f, float test accuracy %.4f", epochs, float(loss.detach()),
                float_accuracy(model, data))
    return model


def float_accuracy(model: nn.Module, data: DigitsData) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(data.x_test)).argmax(dim=1).numpy()
    return float((pred == data.y_test).mean())


# --- the committed digits model (model=digits-committed): the matrix's and the bench's exact budgets -------
#
# The trained digits model's integers depend on how PyTorch's float arithmetic rounds on the CPU that
# trains it, so exact instruction budgets cannot rest on it. firmware/models/digits/ holds one
# training's integer model and its header, as firmware/models/textbook/ does for XOR; everything the
# firmware computes with is then fixed by the repository.

COMMITTED_DIR_NAME = "digits"


def committed_dir() -> Path:
    from .paths import FIRMWARE_DIR

    return FIRMWARE_DIR / "models" / COMMITTED_DIR_NAME


def committed_files(folder: Path | None = None) -> tuple[Path, Path]:
    """(intmodel.json, model.hpp) of the committed digits model."""
    folder = committed_dir() if folder is None else folder
    return folder / "intmodel.json", folder / "model.hpp"


def render_committed_header(intmodel_path: Path) -> str:
    """The header is a pure function of the committed integer model (no float arithmetic)."""
    from .emit_model import render_model_header
    from .intmodel import load

    return render_model_header(load(intmodel_path))


def stale_committed_header(folder: Path | None = None) -> str | None:
    """None when the committed header equals a fresh emission from the committed integer model; else why not."""
    from .emit_model import render_model_header
    from .intmodel import stale_emission

    return stale_emission(*committed_files(folder), render_model_header)


def write_committed(folder: Path | None = None, seed: int = 42) -> tuple[Path, Path]:
    """Train, quantize and emit the digits model into the committed folder (then commit it, and
    regenerate the budgets: `qmcu matrix --update-budgets`)."""
    import tempfile

    from . import atomic
    from .intmodel import load
    from .paths import REPO_ROOT
    from .pipeline import quantize_file_step

    del seed  # examples/digits.py trains with seed 42, as model=digits does
    json_path, header_path = committed_files(folder)
    with tempfile.TemporaryDirectory() as tmp:
        fresh, testset = Path(tmp) / "intmodel.json", Path(tmp) / "testset.npz"
        quantize_file_step(REPO_ROOT / "examples" / "digits.py", None, fresh, testset)
        model = load(fresh)
        model.provenance.pop("reads", None)  # absolute paths of this machine: not for a committed file
        model.save(json_path)
        atomic.write_bytes(json_path.with_name("testset.npz"), testset.read_bytes())
    atomic.write_text(header_path, render_committed_header(json_path))
    return json_path, header_path


def main(argv: list[str] | None = None) -> int:
    """python -m qmcu.digits [--check]: regenerate (or verify) firmware/models/digits/."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m qmcu.digits", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="only verify the committed header against intmodel.json")
    args = parser.parse_args(argv)
    if args.check:
        why = stale_committed_header()
        if why:
            print(f"qmcu: error: {why}; fix: run `python -m qmcu.digits` and commit firmware/models/digits/")
            return 1
        print("committed digits files are consistent")
        return 0
    for path in write_committed():
        print(f"wrote {path}")
    print("now commit firmware/models/digits/ and regenerate the budgets: .venv/bin/qmcu matrix --update-budgets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
