"""XOR training (examples/xor.py's model()): deterministic, and retries a seed that leaves a dead ReLU."""

from __future__ import annotations

import logging

import pytest
import torch

from qmcu.errors import QmcuError
from qmcu.model.train import TrainConfig, _train_once, train
from qmcu.model.xor_model import XOR_INPUTS, XOR_LABELS


def test_training_is_deterministic_and_solves_xor() -> None:
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
    with caplog.at_level(logging.WARNING, logger="qmcu.model.train"):
        _, used = train(cfg)
    assert used == 3
    assert "seed 2: only" in caplog.text and "retrying with seed 3" in caplog.text


def test_gives_up_with_a_clear_message_after_max_tries() -> None:
    with pytest.raises(QmcuError, match=r"no seed in 42\.\.44 classified all 4 XOR points; raise max_tries"):
        train(TrainConfig(epochs=1, max_tries=3))
