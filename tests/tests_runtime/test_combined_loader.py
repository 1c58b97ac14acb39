"""CombinedLoader: Lightning's four modes, iterated alone and by the Trainer (train loaders in
a dict or list, evaluation loaders combined or one after the other), with the same batches,
counts and random state as Lightning."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import runtime as L
from runtime.combined_loader import CombinedLoader
from tests.helpers.models import params_of, quiet

MODES = ("min_size", "max_size_cycle", "max_size", "sequential")


def _iterables():
    return {
        "a": DataLoader(torch.arange(10), batch_size=3, shuffle=True),
        "b": [DataLoader(torch.arange(4) * 10, batch_size=2, shuffle=True), range(5)],
    }


def _walk(cls, mode, twice=False):
    torch.manual_seed(0)
    combined = cls(_iterables(), mode)
    it = iter(combined)
    n = len(combined)
    seen = [(str(b), i, d) for b, i, d in (iter(it) if twice else it)]
    return n, seen, torch.rand(1).item()


@pytest.mark.parametrize("twice", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_iterating_matches_lightning(mode, twice):
    pytest.importorskip("lightning")
    from lightning.pytorch.utilities import CombinedLoader as LightningCombinedLoader

    assert _walk(CombinedLoader, mode, twice) == _walk(LightningCombinedLoader, mode, twice)


def test_modes():
    a, b = [1, 2, 3], [10, 20]
    assert [x for x, _, _ in CombinedLoader([a, b])] == [[1, 10], [2, 20]]  # min_size
    assert [x for x, _, _ in CombinedLoader({"a": a, "b": b}, "max_size_cycle")] == [
        {"a": 1, "b": 10},
        {"a": 2, "b": 20},
        {"a": 3, "b": 10},
    ]
    assert [x for x, _, _ in CombinedLoader((a, b), "max_size")] == [(1, 10), (2, 20), (3, None)]
    assert list(CombinedLoader([a, b], "sequential")) == [
        (1, 0, 0),
        (2, 1, 0),
        (3, 2, 0),
        (10, 0, 1),
        (20, 1, 1),
    ]
    combined = CombinedLoader([a, b], "max_size")
    with pytest.raises(RuntimeError, match="call `iter\\(combined_loader\\)` first"):
        len(combined)
    iter(combined)
    assert len(combined) == 3
    with pytest.raises(ValueError, match="Unsupported mode 'longest'"):
        CombinedLoader([a], "longest")
    with pytest.raises(ValueError, match="Mismatch in flattened length"):
        combined.flattened = [a]


def _model_class(engine):
    class Model(engine.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(1, 1)
            self.seen: list = []

        def training_step(self, batch, batch_idx):
            parts = batch.values() if isinstance(batch, dict) else batch
            x = torch.cat([p.float().view(-1, 1) for p in parts if p is not None])
            self.seen.append(tuple(p.tolist() if p is not None else None for p in parts))
            return self.net(x).pow(2).mean()

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            self.seen.append(("val", dataloader_idx, str(batch)))

        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return batch

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return Model


_Model = _model_class(L)


def _loaders():
    return {
        "long": DataLoader(torch.arange(12), batch_size=4, shuffle=True),
        "short": DataLoader(torch.arange(5) + 100, batch_size=2, shuffle=True),
    }


def _fit(engine, train, val=None):
    torch.manual_seed(0)
    model = _model_class(engine)()
    trainer = engine.Trainer(**quiet(max_epochs=2))
    trainer.fit(model, train() if callable(train) else train, val() if val else None)
    return model, trainer


@pytest.mark.parametrize(
    "train",
    [
        _loaders,  # a dict: max_size_cycle, the short loader iterated anew (reshuffled)
        lambda: list(_loaders().values()),
        lambda: CombinedLoader(_loaders(), "min_size"),
        lambda: CombinedLoader(_loaders(), "max_size"),
    ],
    ids=["dict", "list", "min_size", "max_size"],
)
def test_fit_on_combined_batches_matches_lightning(train):
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.utilities import CombinedLoader as LightningCombinedLoader

    def theirs():
        ours = train()
        if isinstance(ours, CombinedLoader):
            return LightningCombinedLoader(ours.iterables, ours._mode)
        return ours

    model, trainer = _fit(L, train)
    their_model, their_trainer = _fit(lightning, theirs)
    assert model.seen == their_model.seen
    assert trainer.global_step == their_trainer.global_step
    assert all(torch.equal(a, b) for a, b in zip(params_of(model), params_of(their_model)))


def test_evaluation_loaders_combined_or_in_sequence():
    model, _ = _fit(L, _loaders, lambda: CombinedLoader([range(3), range(10, 12)], "sequential"))
    val = [s for s in model.seen if s[0] == "val"]
    assert val[:5] == [
        ("val", 0, "0"),
        ("val", 0, "1"),
        ("val", 0, "2"),
        ("val", 1, "10"),
        ("val", 1, "11"),
    ]
    model, _ = _fit(L, _loaders, lambda: CombinedLoader([range(3), range(10, 12)], "min_size"))
    val = [s for s in model.seen if s[0] == "val"]
    assert val[:2] == [("val", 0, "[0, 10]"), ("val", 0, "[1, 11]")] and len(val) == 4


def test_modes_a_stage_cannot_run_are_refused():
    trainer = L.Trainer(**quiet(max_epochs=1))
    with pytest.raises(
        ValueError, match='does not support the `CombinedLoader\\(mode="sequential"\\)`'
    ):
        trainer.fit(_Model(), CombinedLoader(_loaders(), "sequential"))
    with pytest.raises(
        ValueError, match='only supports the `CombinedLoader\\(mode="sequential"\\)`'
    ):
        L.Trainer(**quiet()).predict(_Model(), CombinedLoader([range(3)], "min_size"))
    out = L.Trainer(**quiet()).predict(
        _Model(), CombinedLoader([range(2), range(5, 6)], "sequential")
    )
    assert out == [[0, 1], [5]]


def test_import_path():
    assert L.pytorch.utilities.CombinedLoader is CombinedLoader
