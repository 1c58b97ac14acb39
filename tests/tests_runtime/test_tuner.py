"""The learning-rate finder (Tuner.lr_find, LearningRateFinder): the same range test as
Lightning's, and a run afterwards that starts from the model as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import runtime as L
from runtime.errors import MisconfigurationException
from runtime.tuner import LearningRateFinder, Tuner
from tests.helpers.models import loader, make_net, params_of, quiet


def _module_class(engine):
    class Model(engine.LightningModule):
        def __init__(self, lr: float = 0.05):
            super().__init__()
            self.save_hyperparameters()
            self.net = make_net(8)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)

    return Model


Model = _module_class(L)


def _find(engine, tuner_cls, **kw):
    torch.manual_seed(0)
    model = _module_class(engine)()
    trainer = engine.Trainer(**quiet(max_epochs=3))
    finder = tuner_cls(trainer).lr_find(
        model, train_dataloaders=loader(n=256, shuffle=True), num_training=30, **kw
    )
    return finder, model, trainer


@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_range_test_matches_lightning(mode):
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.tuner import Tuner as LightningTuner

    ours, model, _ = _find(L, Tuner, mode=mode)
    theirs, their_model, _ = _find(lightning, LightningTuner, mode=mode)
    assert ours.results["lr"] == pytest.approx(theirs.results["lr"], rel=1e-12)
    assert ours.results["loss"] == pytest.approx(theirs.results["loss"], rel=1e-5)
    assert ours.suggestion() == theirs.suggestion()
    assert model.hparams.lr == their_model.hparams.lr
    if ours.suggestion() is not None:
        assert model.hparams.lr == ours.suggestion()


def test_the_search_leaves_the_model_and_the_trainer_as_they_were():
    torch.manual_seed(0)
    model = Model()
    start = params_of(model)
    trainer = L.Trainer(**quiet(max_epochs=2))
    finder = Tuner(trainer).lr_find(model, train_dataloaders=loader(n=256), num_training=20)
    assert len(finder.results["lr"]) == len(finder.results["loss"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(start, params_of(model), strict=True))
    assert trainer.global_step == 0 and trainer.current_epoch == 0
    assert not any(isinstance(cb, LearningRateFinder) for cb in trainer.callbacks)
    lr = model.hparams.lr
    # the run that follows: as a fresh run at the suggested rate from the same weights
    trainer.fit(model, loader(n=64))
    fresh = Model(lr=lr)
    fresh.load_state_dict({k: v for k, v in zip(fresh.state_dict(), start, strict=True)})
    L.Trainer(**quiet(max_epochs=2)).fit(fresh, loader(n=64))
    assert trainer.global_step == 16
    assert all(torch.equal(a, b) for a, b in zip(params_of(model), params_of(fresh), strict=True))


def test_callback_searches_then_trains():
    torch.manual_seed(0)
    model = Model()
    finder = LearningRateFinder(num_training_steps=6, early_stop_threshold=None)
    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[finder]))
    trainer.fit(model, loader(n=64))
    assert finder.optimal_lr is not None and len(finder.optimal_lr.results["lr"]) == 6
    assert trainer.global_step == 8  # the real run after the search
    assert finder.optimal_lr.suggestion(skip_begin=1) is not None


def test_suggestion_needs_points_and_skips_non_finite():
    from runtime.tuner import _LRFinder

    finder = _LRFinder("exponential", 1e-5, 1.0, 10)
    finder.results = {"lr": [1e-5, 1e-4, 1e-3], "loss": [1.0, 0.9, 0.8]}
    assert finder.suggestion() is None  # everything skipped: too few points
    lrs = [10 ** (-5 + i / 4) for i in range(16)]
    losses = [1.0] * 11 + [0.9, 0.5, float("nan"), 0.4, 9.0]
    finder.results = {"lr": lrs, "loss": losses}
    assert finder.suggestion() == lrs[12]  # the steepest fall among the finite points


def test_errors_say_what_is_wrong():
    class NoRate(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = make_net(8)

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(**quiet(max_epochs=1))
    with pytest.raises(AttributeError, match="`lr` or\n?.*`learning_rate`"):
        Tuner(trainer).lr_find(NoRate(), train_dataloaders=loader())

    class TwoOptimizers(Model):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def configure_optimizers(self):
            return [torch.optim.SGD(self.parameters(), lr=0.1) for _ in range(2)]

    with pytest.raises(MisconfigurationException, match="single optimizer"):
        Tuner(L.Trainer(**quiet(max_epochs=1))).lr_find(TwoOptimizers(), loader())
    with pytest.raises(MisconfigurationException, match="method='fit'"):
        Tuner(trainer).lr_find(Model(), loader(), method="validate")
    with pytest.raises(ValueError, match="`mode` should be either of"):
        LearningRateFinder(mode="cosine")
    trainer.callbacks.append(LearningRateFinder())
    with pytest.raises(ValueError, match="already configured with a `LearningRateFinder`"):
        Tuner(trainer).lr_find(Model(), loader())


def test_fast_dev_run_skips_the_search():
    trainer = L.Trainer(**quiet(fast_dev_run=True))
    with pytest.warns(UserWarning, match="Skipping learning rate finder"):
        assert Tuner(trainer).lr_find(Model(), loader()) is None


def test_import_paths():
    assert L.pytorch.tuner.Tuner is Tuner
    assert L.pytorch.callbacks.LearningRateFinder is LearningRateFinder
