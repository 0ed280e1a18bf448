"""Train the float32 XOR model (BCE + SGD, deterministic), retrying seeds that leave a dead ReLU."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import atomic
from .errors import QmcuError
from .options import check_training
from .xor_model import XOR_INPUTS, XOR_LABELS, XORNet

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
    for epoch in range(cfg.epochs):
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


def save_checkpoint(model: XORNet, seed: int, path: Path) -> None:
    """A plain state_dict plus metadata, loadable with torch.load(weights_only=True)."""
    blob = {"state_dict": model.state_dict(), "seed": seed, "hidden_size": model.fc1.out_features,
            "torch": str(torch.__version__)}
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, tmp)
    atomic.write_bytes(path, tmp.read_bytes())
    tmp.unlink()


def load_checkpoint(path: Path) -> tuple[XORNet, int]:
    """Load and validate a checkpoint: shapes, finiteness; every failure is one clear line."""
    fix = "delete it and retrain (scons board=host run retrains)"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise QmcuError(f"checkpoint {path} does not exist", "train first: qmcu train") from err
    except Exception as err:  # torch raises many types for a corrupt file
        raise QmcuError(f"checkpoint {path} is corrupt or not a torch file ({type(err).__name__})", fix) from err
    if not isinstance(blob, dict) or "state_dict" not in blob or "hidden_size" not in blob:
        raise QmcuError(f"checkpoint {path} is not a qmcu XOR checkpoint", fix)
    model = XORNet(int(blob["hidden_size"]))
    state = blob["state_dict"]
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
    if got != expected:
        raise QmcuError(f"checkpoint {path} has tensors {got}, expected {expected}", fix)
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise QmcuError(f"checkpoint {path}: {name} contains NaN or Inf", "retrain with a smaller learning rate")
    model.load_state_dict(state)
    return model, int(blob.get("seed", -1))


def check_finite(model: nn.Module) -> None:
    for name, p in model.state_dict().items():
        if not all(math.isfinite(v) for v in p.flatten().tolist()):
            raise QmcuError(f"trained weight {name} contains NaN or Inf", "retrain with a smaller learning rate")
