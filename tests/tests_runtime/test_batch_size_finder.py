"""The batch-size finder (Tuner.scale_batch_size, BatchSizeFinder): the same trials and the
same size as Lightning's, for every stage and both modes, and a trainer left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import runtime as L
from runtime.callbacks.batch_size_finder import BatchSizeFinder, is_oom_error
from runtime.errors import MisconfigurationException
from runtime.tuner import Tuner
from tests.helpers.models import params_of, quiet

_slow = pytest.mark.slow  # the whole matrix runs in the slow suite, three cases in the fast one
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB"


def _module_class(engine, limit: int, n: int = 300, error: str = OOM):
    """A module whose steps run out of memory (as torch says it) above ``limit`` samples."""

    class Model(engine.LightningModule):
        def __init__(self, batch_size: int = 2):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Linear(4, 1)
            self.seen: list[int] = []

        def _step(self, batch):
            x, y = batch
            self.seen.append(len(x))
            if len(x) > limit:
                raise RuntimeError(error)
            return nn.functional.mse_loss(self.net(x), y)

        def training_step(self, batch, batch_idx):
            return self._step(batch)

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self._step(batch))

        def test_step(self, batch, batch_idx):
            self.log("test_loss", self._step(batch))

        def predict_step(self, batch, batch_idx):
            self._step(batch)
            return self.net(batch[0])

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]

        def train_dataloader(self):
            g = torch.Generator().manual_seed(0)
            data = TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g))
            return DataLoader(data, batch_size=self.hparams.batch_size)

        val_dataloader = test_dataloader = predict_dataloader = train_dataloader

    return Model


def _search(engine, tuner_cls, limit, **kw):
    torch.manual_seed(0)
    model = _module_class(engine, limit)()
    trainer = engine.Trainer(**quiet(max_epochs=1))
    size = tuner_cls(trainer).scale_batch_size(model, **kw)
    return size, model, trainer


_FAST = {("fit", "power", 20), ("test", "binsearch", 20), ("fit", "binsearch", 1000)}
_CASES = [
    pytest.param(method, mode, limit, marks=() if (method, mode, limit) in _FAST else _slow)
    for method in ("fit", "validate", "test", "predict")
    for mode in ("power", "binsearch")
    for limit in (1, 20, 1000)
]


@pytest.mark.parametrize(("method", "mode", "limit"), _CASES)
def test_search_matches_lightning(method, mode, limit):
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.tuner import Tuner as LightningTuner

    ours, model, trainer = _search(L, Tuner, limit, method=method, mode=mode)
    theirs, their_model, _ = _search(lightning, LightningTuner, limit, method=method, mode=mode)
    assert ours == theirs
    assert model.hparams.batch_size == their_model.hparams.batch_size == ours
    if method != "predict":  # Lightning's predict trials run the whole loader, ours 3 batches
        assert model.seen == their_model.seen
    assert trainer.global_step == 0 and trainer.current_epoch == 0


def test_expected_sizes_without_lightning():
    # power: 2, 4, 8, 16 fit, 32 does not -> 16; binsearch then tries 24, 20, 22, 21 -> 20,
    # less the 5 % margin -> 19; the dataset's length (300) caps the doubling
    assert _search(L, Tuner, 20, mode="power")[0] == 16
    assert _search(L, Tuner, 20, mode="binsearch")[0] == 19
    assert _search(L, Tuner, 20, mode="binsearch", margin=0.0)[0] == 20
    size, model, _ = _search(L, Tuner, 10**6, mode="power")
    assert size == 512 and max(model.seen) == 300
    assert _search(L, Tuner, 10**6, mode="power", max_val=64)[0] == 64
    assert _search(L, Tuner, 10**6, mode="power", max_trials=3)[0] == 8


def test_the_search_leaves_the_trainer_as_it_was_then_trains_with_the_size_found():
    torch.manual_seed(0)
    model = _module_class(L, 20)()
    start = params_of(model)
    finder = BatchSizeFinder(mode="power")
    trainer = L.Trainer(**quiet(max_epochs=2, callbacks=[finder]))
    trainer.fit(model)
    assert finder.optimal_batch_size == 16 and model.hparams.batch_size == 16
    assert trainer.global_step == 2 * 19  # ceil(300 / 16) steps per epoch, two epochs
    # the same as a fresh run at batch size 16 from the same weights: nothing the trials did
    # (weights, momentum, the scheduler's steps, counters) leaks into the run
    fresh = _module_class(L, 20)(batch_size=16)
    fresh.load_state_dict({k: v for k, v in zip(fresh.state_dict(), start, strict=True)})
    L.Trainer(**quiet(max_epochs=2)).fit(fresh)
    assert all(torch.equal(a, b) for a, b in zip(params_of(model), params_of(fresh), strict=True))
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 2


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_the_callback_runs_the_stage_with_the_size_found(method):
    torch.manual_seed(0)
    model = _module_class(L, 20)()
    finder = BatchSizeFinder(mode="power")
    trainer = L.Trainer(**quiet(callbacks=[finder]))
    out = getattr(trainer, method)(model)
    assert finder.optimal_batch_size == 16
    tail = model.seen[-19:]  # the stage itself: 300 samples in batches of 16
    assert tail == [16] * 18 + [12]
    if method == "predict":
        assert len(out) == 19 and sum(len(p) for p in out) == 300
    else:
        assert list(out[0]) == [f"{'val' if method == 'validate' else 'test'}_loss"]


def test_batch_size_on_the_datamodule():
    class Data(L.LightningDataModule):
        def __init__(self):
            super().__init__()
            self.batch_size = 2

        def train_dataloader(self):
            data = TensorDataset(torch.randn(100, 4), torch.randn(100, 1))
            return DataLoader(data, batch_size=self.batch_size)

    class Model(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            if len(batch[0]) > 8:
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ...")
            return self.net(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = Data()
    assert Tuner(L.Trainer(**quiet(max_epochs=1))).scale_batch_size(Model(), datamodule=data) == 8
    assert data.batch_size == 8


def test_other_errors_propagate_and_the_trainer_is_put_back():
    model = _module_class(L, 4, error="mat1 and mat2 shapes cannot be multiplied")()
    trainer = L.Trainer(**quiet(max_epochs=1))
    callbacks = list(trainer.callbacks)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        Tuner(trainer).scale_batch_size(model)
    assert trainer.callbacks == callbacks
    assert model.hparams.batch_size == 8  # the size of the trial that failed


def test_oom_recognition():
    assert is_oom_error(RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"))
    assert is_oom_error(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error ..."))
    assert is_oom_error(RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"))
    assert not is_oom_error(RuntimeError("CUDA error: device-side assert triggered"))
    assert not is_oom_error(RuntimeError("out of memory", "two args"))
    assert not is_oom_error(ValueError("CUDA out of memory"))


def test_errors_say_what_is_wrong():
    model_cls = _module_class(L, 20)
    trainer = L.Trainer(**quiet(max_epochs=1))
    given = model_cls().train_dataloader()
    with pytest.raises(MisconfigurationException, match="passed directly to `.fit"):
        Tuner(trainer).scale_batch_size(model_cls(), train_dataloaders=given)
    with pytest.raises(MisconfigurationException, match="Field bs not found"):
        Tuner(L.Trainer(**quiet(max_epochs=1))).scale_batch_size(model_cls(), batch_arg_name="bs")
    with pytest.raises(ValueError, match="method 'tune' is invalid"):
        Tuner(trainer).scale_batch_size(model_cls(), method="tune")
    with pytest.raises(MisconfigurationException, match="`dataloaders` argument should be None"):
        Tuner(trainer).scale_batch_size(model_cls(), dataloaders=given)
    with pytest.raises(MisconfigurationException, match="should be None"):
        Tuner(trainer).scale_batch_size(model_cls(), train_dataloaders=given, method="test")
    with pytest.raises(ValueError, match="`mode` should be either of"):
        BatchSizeFinder(mode="linear")
    with pytest.raises(ValueError, match="`margin` should be between 0 and 1"):
        BatchSizeFinder(margin=1.5)
    with pytest.raises(ValueError, match="already configured with a `BatchSizeFinder`"):
        Tuner(L.Trainer(**quiet(callbacks=[BatchSizeFinder()]))).scale_batch_size(model_cls())


def test_fast_dev_run_skips_the_search():
    trainer = L.Trainer(**quiet(fast_dev_run=True))
    with pytest.warns(UserWarning, match="Skipping batch size scaler"):
        assert Tuner(trainer).scale_batch_size(_module_class(L, 20)()) is None


def test_import_paths():
    assert L.pytorch.callbacks.BatchSizeFinder is BatchSizeFinder
