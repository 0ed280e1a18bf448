"""Train the float32 XOR model (BCE + SGD, deterministic), retrying seeds that leave a dead ReLU."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import torch
from torch import nn
from tqdm import tqdm

from qmcu.errors import QmcuError
from qmcu.model.xor_model import XOR_INPUTS, XOR_LABELS, XORNet
from qmcu.options import check_training

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    epochs: int = 4000
    lr: float = 0.1
    hidden_size: int = 4
    max_tries: int = 8


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings training cannot use, naming the setting, its value and a usable one."""
    check_training(cfg.seed, cfg.epochs, cfg.lr, cfg.max_tries)
    if cfg.hidden_size < 1:
        raise QmcuError(f"hidden_size={cfg.hidden_size} is not a positive integer", "give 1 or more (default 4)")


def epoch_bar(epochs: int, desc: str, stream: TextIO | None = None) -> Iterable[int]:
    """range(epochs), drawn as a progress bar on stderr while it is a terminal (never in logs, tests or CI);
    the bar is erased when the loop ends, so what follows prints as if there had been none."""
    out = sys.stderr if stream is None else stream
    return tqdm(range(epochs), desc=desc, unit="epoch", file=out, disable=not out.isatty(), leave=False,
                mininterval=0.25, dynamic_ncols=True)


def _diverged(cfg: TrainConfig, seed: int, epoch: int) -> QmcuError:
    return QmcuError(f"training diverged at lr={cfg.lr:g}: the model output became NaN or Inf in epoch {epoch + 1} "
                     f"(seed {seed})", "give a smaller learning rate such as lr=0.1")


def _train_once(cfg: TrainConfig, seed: int) -> tuple[XORNet, int, float]:
    torch.manual_seed(seed)
    model = XORNet(cfg.hidden_size)
    x = torch.from_numpy(XOR_INPUTS)
    y = torch.from_numpy(XOR_LABELS.astype("float32")).unsqueeze(1)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    loss_fn = nn.BCELoss()
    loss = torch.tensor(0.0)
    for epoch in epoch_bar(cfg.epochs, f"training XOR (seed {seed})"):
        opt.zero_grad()
        out = model(x)
        try:
            loss = loss_fn(out, y)
        except RuntimeError as err:  # BCELoss refuses NaN outputs: the weights blew up
            if torch.isfinite(out).all():
                raise
            raise _diverged(cfg, seed, epoch) from err
        loss.backward()
        opt.step()
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise _diverged(cfg, seed, cfg.epochs - 1)
    with torch.no_grad():
        correct = int(((model(x) > 0.5).float() == y).sum())
    return model, correct, float(loss.detach())


def train(cfg: TrainConfig) -> tuple[XORNet, int]:
    """Train from cfg.seed, then cfg.seed+1, ... until all four points classify; returns (model, seed used)."""
    check_config(cfg)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for attempt in range(cfg.max_tries):
        seed = cfg.seed + attempt
        model, correct, loss = _train_once(cfg, seed)
        if correct == len(XOR_LABELS):
            logger.info("seed %d: 4/4 after %d epochs (loss %.4f)", seed, cfg.epochs, loss)
            return model, seed
        logger.warning("seed %d: only %d/4 correct (loss %.4f, likely a dead ReLU); retrying with seed %d",
                       seed, correct, loss, seed + 1)
    raise QmcuError(f"training failed: no seed in {cfg.seed}..{cfg.seed + cfg.max_tries - 1} classified all 4 XOR "
                    "points", "raise max_tries, change seed=, or increase epochs=")
