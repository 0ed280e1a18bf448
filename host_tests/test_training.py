"""Training: deterministic, retries a seed that leaves a dead ReLU, and checkpoints load with weights_only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from qmcu.errors import QmcuError
from qmcu.train import TrainConfig, _train_once, load_checkpoint, save_checkpoint, train
from qmcu.xor_model import XOR_INPUTS, XOR_LABELS


def test_training_is_deterministic_and_solves_xor(tmp_path: Path) -> None:
    m1, s1 = train(TrainConfig())
    m2, s2 = train(TrainConfig())
    assert s1 == s2
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    with torch.no_grad():
        pred = (m1(torch.from_numpy(XOR_INPUTS)) > 0.5).long().ravel().tolist()
    assert pred == XOR_LABELS.tolist()


def test_dead_relu_seed_is_retried_with_the_next_seed(caplog: pytest.LogCaptureFixture) -> None:
    cfg = TrainConfig(seed=2)
    _, correct, _ = _train_once(cfg, 2)
    assert correct < 4  # seed 2 really does stop short on its own
    with caplog.at_level(logging.WARNING, logger="qmcu.train"):
        _, used = train(cfg)
    assert used == 3
    assert "seed 2: only" in caplog.text and "retrying with seed 3" in caplog.text


def test_gives_up_with_a_clear_message_after_max_tries() -> None:
    with pytest.raises(QmcuError, match=r"no seed in 42\.\.44 classified all 4 XOR points; raise max_tries"):
        train(TrainConfig(epochs=1, max_tries=3))


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    model, seed = train(TrainConfig(epochs=4000))
    path = tmp_path / "float.pt"
    save_checkpoint(model, seed, path)
    loaded, loaded_seed = load_checkpoint(path)
    assert loaded_seed == seed
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_corrupt_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "float.pt"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(QmcuError, match=r"corrupt or not a torch file \(\w+\); delete it and retrain"):
        load_checkpoint(path)


def test_wrong_shaped_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "float.pt"
    torch.save({"state_dict": {"fc1.weight": torch.zeros(3, 3)}, "hidden_size": 4}, path)
    with pytest.raises(QmcuError, match="has tensors"):
        load_checkpoint(path)


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    from qmcu.xor_model import textbook_model

    model = textbook_model()
    with torch.no_grad():
        model.fc2.weight[0, 1] = float("nan")
    path = tmp_path / "float.pt"
    save_checkpoint(model, 0, path)
    with pytest.raises(QmcuError, match="fc2.weight contains NaN or Inf"):
        load_checkpoint(path)
