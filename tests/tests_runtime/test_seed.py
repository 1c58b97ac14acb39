"""seed_everything, worker seeding, and RNG isolation."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import runtime as L
from runtime.seed import isolate_rng
from tests.helpers.models import RegModel, quiet


class NumpyNoise(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(np.random.rand())


class Passthrough(RegModel):
    def predict_step(self, batch, batch_idx):
        return batch


def predict_noise(workers: bool) -> list[float]:
    L.seed_everything(7, workers=workers, verbose=False)
    loader = DataLoader(NumpyNoise(), batch_size=2, num_workers=2)
    out = L.Trainer(**quiet()).predict(Passthrough(), loader)
    return torch.cat(out).tolist()


def test_seed_everything_sets_all_generators():
    assert L.seed_everything(3, verbose=False) == 3 and os.environ["PL_GLOBAL_SEED"] == "3"
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    L.seed_everything(3, verbose=False)
    assert a == (random.random(), np.random.rand(), torch.rand(1).item())
    with pytest.raises(ValueError, match="out of range"):
        L.seed_everything(-1)


def test_worker_seeds_are_reproducible_and_differ_across_ranks(monkeypatch):
    plain = predict_noise(workers=False)
    seeded = predict_noise(workers=True)
    assert seeded == predict_noise(workers=True)
    monkeypatch.setenv("RANK", "1")
    # torch seeds each worker from the main process's RNG, which is the same on every rank after
    # seed_everything: without `workers=True` two ranks would draw the same augmentations
    assert predict_noise(workers=False) == plain
    assert predict_noise(workers=True) != seeded


def test_isolate_rng_restores_every_generator():
    L.seed_everything(1, verbose=False)
    with isolate_rng():
        random.random(), np.random.rand(), torch.rand(3)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    L.seed_everything(1, verbose=False)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())


def test_pl_metrics_points_to_torchmetrics():
    with pytest.raises(AttributeError, match="torchmetrics"):
        _ = L.metrics
