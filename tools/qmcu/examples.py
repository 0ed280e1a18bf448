"""The built-in examples (the `model=` option): how each is trained, quantized, emitted and run.

  trained   the seed's 2-4-1 XOR MLP trained with PyTorch (default)
  textbook  the seed's exact XOR solution, committed under firmware/models/textbook (no torch)
  digits    a 64-32-10 ReLU MLP on scikit-learn's bundled 8x8 digits
  digits-committed  one training of it, committed under firmware/models/digits (no torch): the
            matrix's and the bench's digits cells, whose exact budgets must not depend on how a
            CPU rounds PyTorch's float arithmetic (regenerate: python -m qmcu.digits)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .paths import FIRMWARE_DIR


@dataclass(frozen=True)
class Example:
    name: str
    app: str  # firmware/app/<app>
    header: str  # the generated model header the app includes
    modes: tuple[str, ...]  # the first is the default
    committed: Path | None = None  # folder of committed intmodel.json + header (no training)
    require_all_correct: bool = True  # XOR must be 4/4; a data set's accuracy is reported, not required
    trainer: str = "xor"


EXAMPLES = {
    "trained": Example("trained", "xor_app.cpp", "weights.hpp", ("xor", "exhaustive")),
    "textbook": Example("textbook", "xor_app.cpp", "weights.hpp", ("xor", "exhaustive"),
                        committed=FIRMWARE_DIR / "models" / "textbook"),
    "digits-committed": Example("digits-committed", "mlp_app.cpp", "model.hpp", ("test",),
                                committed=FIRMWARE_DIR / "models" / "digits", require_all_correct=False,
                                trainer="digits"),
}
