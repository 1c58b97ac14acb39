"""Behaviour that Lightning's own tests pin down and user numbers depend on: when logged metrics
are computed and reset, scheduler stepping under manual optimization, hyperparameters of
subclasses, stage flags, eval hooks without autograd, exception checkpoints, prediction writers.

Where a behaviour is cheap to run on both engines, the test runs both and compares; every test
also states the expected values, so it still means something without Lightning installed.
"""

from __future__ import annotations

import importlib
import os
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import runtime as L
from runtime.callbacks import BasePredictionWriter, ModelCheckpoint, OnExceptionCheckpoint
from tests.helpers.engines import engine_module, engines
from tests.helpers.models import RegModel, loader, quiet

QUIET = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)


# --------------------------------------------------------------------- logged metrics
def _metric_run(engine):
    """A torchmetrics accuracy logged from validation_step; epoch 0 sees 8 right answers out of
    16, epoch 1 none. What callback_metrics holds at each epoch end, and after fit."""
    tm = pytest.importorskip("torchmetrics")
    Lm = importlib.import_module(engine)
    seen = []

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)
            self.acc = tm.classification.MulticlassAccuracy(num_classes=2, average="micro")

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            right = batch_idx < 8 and self.current_epoch == 0 and not self.trainer.sanity_checking
            preds = torch.tensor([[0.1, 0.9]]) if right else torch.tensor([[0.9, 0.1]])
            self.acc(preds, torch.tensor([1]))
            self.log("val_acc", self.acc, on_step=True, on_epoch=True)
            self.log("n", batch_idx)  # a Python int

        def on_validation_epoch_end(self):
            cm = self.trainer.callback_metrics
            seen.append(
                (
                    self.trainer.sanity_checking,
                    {k: round(float(v), 4) for k, v in cm.items()},
                    {k: type(v).__name__ for k, v in cm.items()},
                )
            )

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    trainer = Lm.Trainer(max_epochs=2, limit_train_batches=4, limit_val_batches=16, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(M(), DataLoader(data, batch_size=4), DataLoader(data, batch_size=1))
    final = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
    return seen, final


@pytest.mark.parametrize("engine", engines())
def test_logged_metric_is_reset_and_callback_metrics_are_live(engine):
    seen, final = _metric_run(engine)
    (sanity, sanity_vals, _), (_, epoch0, types0), (_, epoch1, _) = seen
    # the sanity check's numbers are visible while it runs, then dropped and the metric reset
    assert sanity and sanity_vals["val_acc"] == 0.0 and "train_loss" not in sanity_vals
    # this epoch's values in on_validation_epoch_end (not {} / the previous epoch's)
    assert epoch0["val_acc"] == 0.5 and epoch0["n"] == 7.5 and "train_loss" in epoch0
    assert epoch1["val_acc"] == 0.0  # a metric that is not reset would give 8/32 here
    assert final["val_acc"] == 0.0
    # numbers become tensors, as Lightning
    assert types0["n"] == "Tensor"


def test_callback_metrics_match_lightning():
    pytest.importorskip("lightning")
    assert _metric_run("runtime") == _metric_run("lightning")


def test_early_stopping_on_a_training_metric_with_a_validation_loop():
    """`EarlyStopping(monitor="train_loss")` checks at validation end; the training step
    value must be in callback_metrics there (it raised 'not available' before)."""
    from runtime.callbacks import EarlyStopping

    stopper = EarlyStopping(monitor="train_loss", patience=0, min_delta=10.0)
    trainer = L.Trainer(**quiet(max_epochs=5, callbacks=[stopper]))
    trainer.fit(RegModel(), loader(n=32), loader(n=16))
    assert trainer.current_epoch == 2  # epoch 0 sets the best, epoch 1 fails by 10 and stops


# --------------------------------------------------------------------- manual optimization
class _ManualSched(L.LightningModule):
    def __init__(self, scheduler):
        super().__init__()
        self.automatic_optimization = False
        self.layer = torch.nn.Linear(8, 1)
        self.kind = scheduler

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        if self.trainer.is_last_batch:
            sch = self.lr_schedulers()
            if self.kind == "plateau":
                sch.step(loss.detach())
            else:
                sch.step()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=1.0)
        if self.kind == "plateau":
            return [opt], [torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)]
        if self.kind == "custom":
            return [opt], [_HalvingScheduler(opt)]
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


class _HalvingScheduler:
    """Not a torch scheduler: allowed with manual optimization (the user steps it)."""

    def __init__(self, opt):
        self.optimizer = opt

    def step(self):
        for g in self.optimizer.param_groups:
            g["lr"] *= 0.5

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("kind", ["step", "custom", "plateau"])
def test_manual_optimization_schedulers_are_stepped_only_by_the_user(kind):
    model = _ManualSched(kind)
    trainer = L.Trainer(**quiet(max_epochs=3))
    trainer.fit(model, loader(n=16))
    lr = model.optimizers().param_groups[0]["lr"]
    if kind == "plateau":
        assert lr <= 0.5  # stepped by the user with a metric, no monitor needed
    else:
        assert lr == pytest.approx(0.125)  # three user steps of x0.5, not six


# --------------------------------------------------------------------- hyperparameters
class _Parent(L.LightningModule):
    def __init__(self, batch_size=64):
        super().__init__()
        self.save_hyperparameters()


class _Child(_Parent):
    def __init__(self, *args, subclass_arg=1200, **kwargs):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters()


class _OddNames(_Parent):
    def __init__(obj, *more, other_arg=300, **more_kw):  # noqa: N805
        super().__init__(*more, **more_kw)
        obj.save_hyperparameters()


class _Overrides(_Parent):
    def __init__(self, batch_size=8, **kwargs):
        super().__init__(batch_size=batch_size * 2)
        self.save_hyperparameters()


class _DataParent(L.LightningDataModule):
    def __init__(self, batch_size=8):
        super().__init__()
        self.save_hyperparameters()


class _DataChild(_DataParent):
    def __init__(self, *args, extra=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.save_hyperparameters()


@pytest.mark.parametrize(
    "cls,expected",
    [
        (_Child, {"batch_size": 64, "subclass_arg": 1200}),
        (_OddNames, {"batch_size": 64, "other_arg": 300}),
        (_DataChild, {"batch_size": 8, "extra": 1}),
        (_Overrides, {"batch_size": 8}),  # the subclass's own argument wins, as in Lightning
    ],
)
def test_save_hyperparameters_keeps_parent_arguments(cls, expected):
    assert dict(cls().hparams) == expected


def test_subclass_hyperparameters_survive_a_checkpoint(tmp_path):
    model = _Child(batch_size=179)

    class Fit(_Child):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.net = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Fit(batch_size=179)
    trainer = L.Trainer(**quiet(max_epochs=1, default_root_dir=str(tmp_path)))
    trainer.fit(model, loader(n=16))
    path = str(tmp_path / "m.ckpt")
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    assert raw[L.LightningModule.CHECKPOINT_HYPER_PARAMS_KEY] == {
        "batch_size": 179,
        "subclass_arg": 1200,
    }
    assert Fit.load_from_checkpoint(path).hparams.batch_size == 179


# --------------------------------------------------------------------- loggers
def test_fast_dev_run_logger_experiment_accepts_anything():
    class M(RegModel):
        def training_step(self, batch, batch_idx):
            self.logger.experiment.add_histogram("w", self.net[0].weight)
            self.logger.experiment["key"].log(1.0)
            self.logger.log_image(key="x", images=[])
            return super().training_step(batch, batch_idx)

    trainer = L.Trainer(fast_dev_run=2, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(M(), loader(n=32))
    assert trainer.global_step == 2


# --------------------------------------------------------------------- stages and autograd
@pytest.mark.parametrize("engine", engines())
def test_eval_hooks_run_without_autograd_and_limit_zero_runs_nothing(engine):
    Lm = importlib.import_module(engine)
    calls = []

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            pass

        def test_step(self, batch, batch_idx):
            pass

        def predict_step(self, batch, batch_idx):
            return batch[0].sum()

        def _loader(self):
            calls.append("dataloader")
            return DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=2)

        val_dataloader = test_dataloader = predict_dataloader = _loader

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    for hook in ("on_validation_start", "on_test_start", "on_predict_start", "on_test_end"):

        def record(self, _hook=hook):
            calls.append((_hook, torch.is_grad_enabled(), torch.is_inference_mode_enabled()))

        setattr(M, hook, record)
    m = M()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Lm.Trainer(limit_val_batches=0, **QUIET).validate(m) == []
        assert Lm.Trainer(limit_test_batches=0, **QUIET).test(m) == []
        assert Lm.Trainer(limit_predict_batches=0, **QUIET).predict(m) is None
        assert calls == []
        Lm.Trainer(**QUIET).test(m, verbose=False)
        Lm.Trainer(**QUIET).predict(m)
        Lm.Trainer(inference_mode=False, **QUIET).validate(m, verbose=False)
    assert calls == [
        "dataloader",
        ("on_test_start", False, True),
        ("on_test_end", False, True),
        "dataloader",
        ("on_predict_start", False, True),
        "dataloader",
        ("on_validation_start", False, False),
    ]


def test_trainer_state_is_lightning_shaped():
    from runtime.states import RunningStage, TrainerFn, TrainerStatus

    stages = []

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            stages.append((self.trainer.state.stage, self.trainer.training))
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            t = self.trainer
            stages.append((t.state.stage, t.training or t.validating and t.sanity_checking))
            return super().validation_step(batch, batch_idx)

    trainer = L.Trainer(
        **quiet(max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=1)
    )
    assert trainer.state.status == TrainerStatus.INITIALIZING
    trainer.fit(M(), loader(n=16), loader(n=16))
    assert trainer.state.fn == TrainerFn.FITTING == "fit" and trainer.state.fn.value == "fit"
    assert trainer.state.status.value == "finished" and trainer.state.finished
    assert stages == [
        (RunningStage.SANITY_CHECKING, False),
        (RunningStage.TRAINING, True),
        (RunningStage.VALIDATING, False),
    ]
    assert trainer.state.stage is None and not trainer.training


def test_hand_built_lightning_optimizer_steps_without_a_trainer():
    from runtime.optimization import LightningOptimizer

    p = torch.nn.Parameter(torch.ones(1))
    opt = LightningOptimizer(torch.optim.SGD([p], lr=0.5))
    p.grad = torch.ones(1)
    opt.step()
    assert p.item() == 0.5 and isinstance(opt, torch.optim.SGD)
    with pytest.raises(Exception, match="closure should be callable"):
        opt.step(closure=3)


def test_progress_bar_subclass_sees_the_trainer_and_batch_totals():
    from runtime.callbacks import ProgressBar

    seen = {}

    class Bar(ProgressBar):
        def on_train_epoch_start(self, trainer, pl_module):
            seen["train"] = self.total_train_batches
            seen["val"] = self.total_val_batches
            seen["same"] = self.trainer is trainer

    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[Bar()], enable_progress_bar=True))
    trainer.fit(RegModel(), loader(n=24), loader(n=16))
    assert seen == {"train": 3, "val": 2, "same": True}


# --------------------------------------------------------------------- checkpoints
class _Boom(RegModel):
    def training_step(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("Trouble!")
        return super().training_step(batch, batch_idx)


def test_model_checkpoint_save_on_exception_uses_its_filename(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, filename="exception", save_on_exception=True)
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[ckpt], enable_checkpointing=True))
    with pytest.raises(RuntimeError, match="Trouble!"):
        trainer.fit(_Boom(), loader(n=32))
    assert (tmp_path / "exception.ckpt").is_file()
    saved = torch.load(tmp_path / "exception.ckpt", weights_only=False)
    assert saved["global_step"] == 5 and saved["state_dict"]


def test_on_exception_checkpoint_and_resume_from_it(tmp_path):
    ft = OnExceptionCheckpoint(tmp_path)
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[ft], enable_checkpointing=True))
    with pytest.raises(RuntimeError, match="Trouble!"):
        trainer.fit(_Boom(), loader(n=32))
    assert os.path.isfile(ft.ckpt_path) and ft.ckpt_path.endswith("on_exception.ckpt")
    # a new fit with the callback resumes from it by default (as Lightning), and the file is
    # removed once the stage ends normally
    ft2 = OnExceptionCheckpoint(tmp_path)
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[ft2], enable_checkpointing=True))
    with pytest.warns(UserWarning, match="The last model of the previous `fit` call will be used"):
        trainer.fit(RegModel(), loader(n=32))
    assert trainer.ckpt_path == ft.ckpt_path
    assert trainer.global_step == 12  # 5 steps restored + 7 more, not 12 from scratch + 12
    assert not os.path.exists(ft.ckpt_path)
    with pytest.raises(ValueError, match="cannot be empty"):
        OnExceptionCheckpoint(tmp_path, filename="")


class _Writer(BasePredictionWriter):
    def __init__(self, interval):
        super().__init__(interval)
        self.batches, self.epoch = [], None

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, *args):
        self.batches.append((batch_indices, prediction.tolist()))

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        self.epoch = (batch_indices, [p.tolist() for p in predictions])


def test_prediction_writer_gets_predictions_and_batch_indices():
    class M(RegModel):
        def predict_step(self, batch, batch_idx):
            return batch[0][:, 0]

    data = TensorDataset(torch.arange(10.0).repeat(8, 1).T)
    shuffled = DataLoader(
        data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    writer = _Writer("batch_and_epoch")
    trainer = L.Trainer(**quiet(callbacks=[writer]))
    out = trainer.predict(M(), shuffled, return_predictions=False)
    assert out is None
    # each prediction is the sample's own index here, so indices and values must agree
    for indices, values in writer.batches:
        assert [float(i) for i in indices] == values
    assert sorted(i for idx, _ in writer.batches for i in idx) == list(range(10))
    epoch_indices, epoch_values = writer.epoch
    assert epoch_indices == [[idx for idx, _ in writer.batches]]  # one list per dataloader
    assert epoch_values == [v for _, v in writer.batches]  # one dataloader: the list itself
    with pytest.raises(ValueError, match="write_interval"):
        _Writer("sometimes")


# --------------------------------------------------------------------- Lightning 2.6 features
def _count_validations(engine, interval):
    Lm = importlib.import_module(engine)
    runs = []

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def validation_step(self, batch, batch_idx):
            pass

        def on_validation_end(self):
            runs.append((self.current_epoch, self.global_step))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = Lm.Trainer(max_epochs=2, val_check_interval=interval, num_sanity_val_steps=0, **QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(M(), loader(n=32), loader(n=8))
    return runs


@pytest.mark.parametrize(
    "interval,expected",
    [
        # zero seconds: due after every batch
        ({"seconds": 0}, [(0, s) for s in range(1, 5)] + [(1, s) for s in range(5, 9)]),
        # an hour: never due, not even at the end of an epoch (as Lightning)
        ("00:01:00:00", []),
    ],
)
def test_time_based_val_check_interval(interval, expected):
    from datetime import timedelta

    assert _count_validations("runtime", interval) == expected
    if isinstance(interval, dict):
        assert _count_validations("runtime", timedelta(**interval)) == expected
    if "lightning" in engines():
        assert _count_validations("lightning", interval) == expected


def test_time_based_val_check_interval_rejects_bad_durations():
    from runtime.errors import MisconfigurationException

    with pytest.raises(MisconfigurationException, match="DD:HH:MM:SS"):
        L.Trainer(val_check_interval="5 minutes")
    with pytest.raises(MisconfigurationException, match="val_check_interval"):
        L.Trainer(val_check_interval={"minuts": 5})


def _lr_monitor_run(engine, root):
    Lm = importlib.import_module(engine)
    cbs = engine_module(engine, "callbacks")
    lgs = engine_module(engine, "loggers")

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(8, 1), torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            out = self.a(batch[0]) + self.b(batch[0])
            return torch.nn.functional.mse_loss(out, batch[1])

        def configure_optimizers(self):
            groups = [{"params": self.a.parameters()}, {"params": self.b.parameters(), "lr": 0.5}]
            opt = torch.optim.Adam(groups, lr=0.1, weight_decay=0.01)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]

    monitor = cbs.LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    trainer = Lm.Trainer(
        max_epochs=2,
        callbacks=[monitor],
        logger=lgs.CSVLogger(root),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(M(), loader(n=16))
    metrics = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items()}
    return metrics, dict(monitor.lrs), dict(monitor.last_momentum_values)


def test_lr_monitor_names_momentum_and_callback_metrics(tmp_path):
    metrics, lrs, momentum = _lr_monitor_run("runtime", str(tmp_path / "rt"))
    assert lrs == {"lr-Adam/pg1": [0.1, 0.05], "lr-Adam/pg2": [0.5, 0.25]}
    assert momentum == {"lr-Adam/pg1-momentum": 0.9, "lr-Adam/pg2-momentum": 0.9}
    assert metrics["lr-Adam/pg2"] == 0.25 and metrics["lr-Adam/pg1-weight_decay"] == 0.01
    if "lightning" in engines():
        assert (metrics, lrs, momentum) == _lr_monitor_run("lightning", str(tmp_path / "pl"))


# --------------------------------------------------------------------- hooks and resume
def test_hooks_set_to_none_or_wrapped_are_not_overrides():
    """`model.validation_step = None` switches validation off (older tutorials do this), and a
    functools wrapper around an inherited hook does not count as an override; callback hooks
    set on the instance are always called (Lightning calls every callback hook)."""
    import functools

    calls = []

    class Recorder(L.Callback):
        pass

    rec = Recorder()

    def on_train_start(trainer, pl_module):
        calls.append("cb.on_train_start")

    rec.on_train_start = on_train_start
    model = RegModel()
    model.validation_step = None
    dm_wrapped = functools.partial(L.LightningDataModule.on_before_batch_transfer, None)
    functools.update_wrapper(dm_wrapped, L.LightningDataModule.on_before_batch_transfer)
    from runtime.utilities import is_overridden

    dm = L.LightningDataModule()
    dm.on_before_batch_transfer = dm_wrapped
    assert not is_overridden("on_before_batch_transfer", dm, L.LightningDataModule)
    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[rec]))
    trainer.fit(model, loader(n=16), loader(n=16))
    assert calls == ["cb.on_train_start"]
    assert trainer.num_val_batches == [] or not trainer._has_val_batches()


def test_gradient_clipping_hooks_get_keyword_arguments():
    seen = {}

    class M(RegModel):
        def configure_gradient_clipping(self, optimizer, **kwargs):
            seen.update(kwargs)
            super().configure_gradient_clipping(optimizer, **kwargs)

    L.Trainer(**quiet(max_epochs=1, gradient_clip_val=0.5)).fit(M(), loader(n=16))
    assert seen == {"gradient_clip_val": 0.5, "gradient_clip_algorithm": "norm"}


def test_resume_with_more_max_steps_continues_the_epoch(tmp_path):
    """A run stopped by max_steps mid-epoch and resumed with a larger max_steps takes the next
    batches of the same epoch (the uninterrupted run's), without a second on_train_epoch_start;
    it used to start a new epoch."""
    events = []

    class M(RegModel):
        def on_train_epoch_start(self):
            events.append(("epoch_start", self.current_epoch))

        def training_step(self, batch, batch_idx):
            events.append((self.current_epoch, batch_idx))
            return super().training_step(batch, batch_idx)

    def data():
        return loader(n=64, batch_size=8, shuffle=True, seed=3)

    torch.manual_seed(0)
    straight = M()
    L.Trainer(**quiet(max_steps=5)).fit(straight, data())
    expected_events = list(events)

    events.clear()
    torch.manual_seed(0)
    first = M()
    kw = dict(default_root_dir=str(tmp_path), enable_checkpointing=True)
    t1 = L.Trainer(**quiet(max_steps=2, **kw))
    t1.fit(first, data())
    path = t1.checkpoint_callback.best_model_path
    resumed = M()
    L.Trainer(**quiet(max_steps=5, **kw)).fit(resumed, data(), ckpt_path=path)
    assert events == expected_events[:3] + [(0, 2), (0, 3), (0, 4)]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_checkpoint_hooks_see_lightnings_top_level_keys(tmp_path):
    """The save and load hooks get exactly Lightning's top-level keys (Lightning's hook tests
    compare them); the runtime's exact-resume random state is written beside them, under a key
    of its own, after the save hooks, and taken out before the load hooks."""
    from runtime.checkpoint import RNG_KEY
    from tests.tests_runtime.test_checkpoint import LIGHTNING_KEYS

    seen = {}

    class M(RegModel):
        def on_save_checkpoint(self, checkpoint):
            seen["save"] = checkpoint  # by reference: the dict must stay as the hook saw it

        def on_load_checkpoint(self, checkpoint):
            seen["load"] = set(checkpoint)

    trainer = L.Trainer(**quiet(max_epochs=1, default_root_dir=str(tmp_path)))
    trainer.fit(M(), loader(n=16))
    path = str(tmp_path / "x.ckpt")
    trainer.save_checkpoint(path)
    assert set(seen["save"]) == LIGHTNING_KEYS
    assert set(torch.load(path, weights_only=True)) == LIGHTNING_KEYS | {RNG_KEY}
    L.Trainer(**quiet(max_epochs=2)).fit(M(), loader(n=16), ckpt_path=path)
    assert seen["load"] == LIGHTNING_KEYS
    trainer.save_checkpoint(path, weights_only=True)
    assert RNG_KEY not in torch.load(path, weights_only=True)


def test_epoch_end_value_is_not_overwritten_by_the_step_value():
    """A key logged in training_step and again in on_train_epoch_end: the epoch-end value is
    what the progress bar and callbacks keep (a checkpoint callback reading callback_metrics
    used to merge the stale step value back over it)."""

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            self.log("shared", 100.0, prog_bar=True)
            return super().training_step(batch, batch_idx)

        def on_train_epoch_end(self):
            self.log("shared", 111.0, prog_bar=True)

    trainer = L.Trainer(**quiet(max_epochs=2, enable_checkpointing=True))
    trainer.fit(M(), loader(n=16))
    assert trainer.progress_bar_metrics["shared"] == 111.0
    assert float(trainer.callback_metrics["shared"]) == 111.0


def test_checkpoint_saved_after_fit_resumes_exactly(tmp_path):
    """`trainer.save_checkpoint` after `fit` returned, then `fit(ckpt_path=...)` with more
    epochs: the run goes on with the next epoch and gives the uninterrupted run's weights (it
    skipped an epoch before: the saved epoch count was taken for one still running)."""

    def data():
        return loader(n=48, batch_size=8, shuffle=True, seed=5)

    class M(RegModel):
        def __init__(self):
            super().__init__(dropout=0.2)

    torch.manual_seed(0)
    straight = M()
    L.Trainer(**quiet(max_epochs=4)).fit(straight, data())
    torch.manual_seed(0)
    first = M()
    t1 = L.Trainer(**quiet(max_epochs=2))
    t1.fit(first, data())
    path = str(tmp_path / "after_fit.ckpt")
    t1.save_checkpoint(path)
    resumed = M()
    t2 = L.Trainer(**quiet(max_epochs=4))
    t2.fit(resumed, data(), ckpt_path=path)
    assert t2.current_epoch == 4 and t2.global_step == 24
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fit_loop_is_the_run_state():
    """`trainer.fit_loop` holds the counters in Lightning's shape; changing its max_epochs
    continues training in the next fit call."""
    trainer = L.Trainer(**quiet(max_epochs=1, limit_val_batches=2))
    model = RegModel()
    trainer.fit(model, loader(n=32), loader(n=32))
    loop = trainer.fit_loop
    assert loop.epoch_progress.current.completed == 1 and loop.done
    assert loop.epoch_loop.batch_progress.total.completed == 4
    assert loop.epoch_loop.val_loop.batch_progress.total.completed == 2
    assert loop.total_batch_idx == 3
    optim = loop.epoch_loop.automatic_optimization.optim_progress
    assert optim.optimizer_steps == trainer.global_step == 4
    assert optim.optimizer.zero_grad.total.completed == 4
    trainer.fit_loop.max_epochs = 3
    trainer.fit(model, loader(n=32), loader(n=32))
    assert trainer.current_epoch == 3 and trainer.global_step == 12
    # validation's total counts the batches of the current epoch (Lightning resets it per epoch)
    assert loop.epoch_loop.val_loop.batch_progress.total.completed == 2
    state = loop.state_dict()
    assert state["epoch_progress"]["total"] == {
        "ready": 3,
        "started": 3,
        "processed": 3,
        "completed": 3,
    }


@pytest.mark.parametrize("value", [None, {"a": None}, {"a": {"b": 1}}, "foo", [1, 2, 3], (1, 2)])
def test_log_rejects_what_cannot_be_logged_with_lightnings_words(value):
    """Checked first, with or without a Trainer; the message starts as Lightning's."""
    from re import escape

    with pytest.raises(ValueError, match=escape(f"`self.log(foo, {value})` was called, but")):
        RegModel().log("foo", value)


def test_loggers_get_keyword_arguments_and_signatures_are_real_types():
    from inspect import signature

    from jsonargparse import ArgumentParser

    from runtime.loggers import Logger

    calls = []

    class Spy(Logger):
        def log_metrics(self, **kwargs):
            calls.append(sorted(kwargs))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    L.Trainer(**quiet(max_epochs=1, logger=Spy(), log_every_n_steps=1)).fit(RegModel(), loader())
    assert calls and all(c == ["metrics", "step"] for c in calls)
    parser = ArgumentParser()
    parser.add_argument("--a", type=signature(ModelCheckpoint).parameters["save_last"].annotation)
    assert [parser.parse_args(["--a", v]).a for v in ("true", "False", "link")] == [
        True,
        False,
        "link",
    ]


def test_datamodule_str_lists_the_loaders_it_can_give():
    import os

    class DM(L.LightningDataModule):
        def setup(self, stage):
            self.data = TensorDataset(torch.zeros(7, 1))

        def train_dataloader(self):
            return DataLoader(self.data)

        def val_dataloader(self):
            return [DataLoader(self.data), DataLoader(self.data)]

    dm = DM()
    assert str(dm).split(os.linesep)[0] == "{Train dataloader: None}"
    dm.setup("fit")
    assert str(dm).split(os.linesep) == [
        "{Train dataloader: size=7}",
        "{Validation dataloader: 1. size=7 ; 2. size=7}",
        "{Test dataloader: None}",
        "{Predict dataloader: None}",
    ]


def test_should_stop_stays_set_until_min_epochs_allow_the_stop():
    seen = []

    class M(RegModel):
        def on_train_epoch_end(self):
            seen.append(self.trainer.should_stop)
            self.trainer.should_stop = True

    trainer = L.Trainer(**quiet(max_epochs=10, min_epochs=3))
    trainer.fit(M(), loader(n=16))
    assert trainer.current_epoch == 3 and seen == [False, True, True]


class _DictHparams(L.LightningModule):
    def __init__(self, hparams):
        super().__init__()
        self.save_hyperparameters(hparams)
        self.net = torch.nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Base3(L.LightningModule):
    def __init__(self, arg1, arg2, arg3):
        super().__init__()
        self.save_hyperparameters(ignore="arg1")


class _Sub3(_Base3):
    def __init__(self, arg1, arg2, arg3):
        super().__init__(arg1=arg1, arg2=arg2, arg3=arg3)
        self.save_hyperparameters(ignore="arg2")


def test_hparams_given_as_one_dict_round_trip_through_a_checkpoint(tmp_path):
    """`save_hyperparameters(hparams)` with a dict init argument: the checkpoint names the
    argument, and load_from_checkpoint passes the dict back through it (it spread the keys as
    keyword arguments before: `unexpected keyword argument`)."""
    model = _DictHparams(hparams={"test_arg": 14})
    trainer = L.Trainer(**quiet(max_epochs=1))
    trainer.fit(model, loader(n=16))
    path = str(tmp_path / "d.ckpt")
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)["hparams_name"] == "hparams"
    back = _DictHparams.load_from_checkpoint(path)
    assert dict(back.hparams) == {"test_arg": 14}
    # names the class does not take are dropped (it has no **kwargs), as Lightning
    again = RegModel.load_from_checkpoint(
        _save_with_extra(tmp_path, {"lr": 0.5, "gone": 1}), strict=False
    )
    assert again.hparams.lr == 0.5 and "gone" not in again.hparams


def _save_with_extra(tmp_path, hparams):
    trainer = L.Trainer(**quiet(max_epochs=1))
    trainer.fit(RegModel(), loader(n=16))
    path = str(tmp_path / "extra.ckpt")
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"] = hparams
    torch.save(ckpt, path)
    return path


def test_subclass_ignore_removes_what_the_base_saved():
    assert dict(_Sub3(arg1=14, arg2=90, arg3=50).hparams) == {"arg3": 50, "arg1": 14}


def test_small_api_details_match_lightning():
    from runtime.utilities import is_picklable

    model = RegModel()
    assert model.freeze() is model and not model.training
    assert model.unfreeze() is model and model.training
    with pytest.raises(TypeError, match="`gradient_clip_val` should be an int or a float"):
        L.Trainer(gradient_clip_val="0.5")
    assert is_picklable({"a": 1}) and not is_picklable(lambda: 0)


def test_evaluating_without_a_model_names_the_best_checkpoint(tmp_path):
    ckpt = ModelCheckpoint(monitor="val_loss")
    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[ckpt], enable_checkpointing=True))
    trainer.fit(RegModel(), loader(n=16), loader(n=16))
    with pytest.warns(UserWarning, match="The best model of the previous `fit` call will be used"):
        trainer.validate(dataloaders=loader(n=16), verbose=False)
    assert trainer.ckpt_path == ckpt.best_model_path


def test_lr_monitor_checks_momentum_and_group_names(tmp_path):
    from runtime.callbacks import LearningRateMonitor
    from runtime.errors import MisconfigurationException
    from runtime.loggers import CSVLogger

    class M(RegModel):
        def __init__(self, groups):
            super().__init__()
            self.groups = groups

        def configure_optimizers(self):
            if self.groups:
                first, second = list(self.net.parameters())[:2], list(self.net.parameters())[2:]
                return torch.optim.Adagrad(
                    [{"params": first, "name": "g"}, {"params": second, "name": "g"}]
                )
            return torch.optim.Adagrad(self.parameters())

    def fit(groups):
        monitor = LearningRateMonitor(log_momentum=True)
        kw = dict(callbacks=[monitor], logger=CSVLogger(str(tmp_path)), max_epochs=1)
        L.Trainer(**quiet(**kw)).fit(M(groups), loader(n=16))

    with pytest.warns(RuntimeWarning, match="optimizers do not have momentum"):
        fit(False)
    with pytest.raises(MisconfigurationException, match="identical `name` values"):
        fit(True)


def test_exception_in_the_closure_counts_the_step_as_started(tmp_path):
    """The optimizer step is 'ready' when it starts (its closure runs training_step) and
    'completed' when it returns, so an exception checkpoint shows the step cut short, as
    Lightning's does."""
    trainer = L.Trainer(
        **quiet(
            max_epochs=3, callbacks=[OnExceptionCheckpoint(tmp_path)], enable_checkpointing=True
        )
    )
    with pytest.raises(RuntimeError, match="Trouble!"):
        trainer.fit(_Boom(), loader(n=32))
    saved = torch.load(tmp_path / "on_exception.ckpt", weights_only=True)
    step = saved["loops"]["fit_loop"]["epoch_loop.automatic_optimization.optim_progress"]
    assert step["optimizer"]["step"]["total"] == {"ready": 6, "completed": 5}
    assert step["optimizer"]["step"]["current"] == {"ready": 2, "completed": 1}


def test_last_checkpoints_are_found_by_name_prefix(tmp_path):
    for name in ("last.ckpt", "last-v1.ckpt", "epoch=0-last.ckpt", "last.pt", "log.txt"):
        (tmp_path / name).touch()
    cb = ModelCheckpoint(dirpath=tmp_path)
    assert cb._find_last_checkpoints(L.Trainer(**quiet())) == {
        str(tmp_path / "last.ckpt"),
        str(tmp_path / "last-v1.ckpt"),
    }


@pytest.mark.parametrize("engine", engines())
def test_max_time_is_a_timer_that_stops_after_the_batch(engine):
    Lm = importlib.import_module(engine)
    cbs = engine_module(engine, "callbacks")

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    trainer = Lm.Trainer(max_time={"seconds": 0}, max_epochs=5, **QUIET)
    timers = [c for c in trainer.callbacks if isinstance(c, cbs.Timer)]
    assert len(timers) == 1 and timers[0].time_remaining() == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(M(), loader(n=32))
    # a budget already spent stops the run before its first step (Lightning does the same)
    assert trainer.global_step == 0 and timers[0].time_remaining() <= 0
    assert set(timers[0].state_dict()["time_elapsed"]) >= {"train", "validate", "test"}


def test_timer_budget_carries_over_a_resume(tmp_path):
    from runtime.callbacks import Timer

    timer = Timer(duration={"hours": 1}, interval="epoch")
    timer.load_state_dict({"time_elapsed": {"train": 3600.0}})
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[timer]))
    trainer.fit(RegModel(), loader(n=16))
    assert trainer.global_step == 0  # the budget was used up before this run started
    with pytest.raises(Exception, match="Unsupported parameter value `Timer\\(interval=hour\\)`"):
        Timer(interval="hour")


def test_more_messages_in_lightnings_words(tmp_path):
    from runtime.errors import MisconfigurationException

    with pytest.raises(ValueError, match=r"enable_checkpointing=True\)` was passed"):
        L.Trainer(barebones=True, enable_checkpointing=True)
    with pytest.raises(MisconfigurationException, match="No quantity for top_k to track"):
        ModelCheckpoint(save_top_k=3)

    class Prim(L.LightningModule):
        def __init__(self, arg1=1):
            super().__init__()
            self.save_hyperparameters(42)

    with pytest.raises(ValueError, match=r"Primitives \(<class 'bool'>"):
        Prim()

    class Unpicklable(RegModel):
        def __init__(self, fn=lambda x: x):
            super().__init__()

    trainer = L.Trainer(**quiet(max_epochs=2, default_root_dir=str(tmp_path)))
    trainer.fit(Unpicklable(), loader(n=16))
    path = str(tmp_path / "two.ckpt")
    with pytest.warns(
        UserWarning, match="Attribute 'fn' removed from hparams because it cannot be"
    ):
        trainer.save_checkpoint(path)
    with pytest.raises(
        MisconfigurationException, match="You restored a checkpoint with current_epoch=2"
    ):
        L.Trainer(**quiet(max_epochs=1)).fit(RegModel(), loader(n=16), ckpt_path=path)


def test_public_classes_have_docstrings():
    import inspect

    import runtime.callbacks as cbs
    import runtime.loggers as lgs
    import runtime.strategies as sts

    classes = [L.Trainer, L.LightningModule, L.LightningDataModule, L.Callback]
    for mod in (cbs, lgs, sts):
        names = getattr(mod, "__all__", dir(mod))
        classes += [getattr(mod, n) for n in names if inspect.isclass(getattr(mod, n, None))]
    undocumented = [
        c.__qualname__ for c in classes if not (c.__dict__.get("__doc__") or "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize("engine", engines())
def test_results_per_dataloader_hold_what_was_logged_for_it(engine):
    """With several test loaders: a key logged without suffix (add_dataloader_idx=False) belongs
    to the loader it was logged for; what on_test_epoch_end logs belongs to every loader (it got
    the last loader's suffix before)."""
    Lm = importlib.import_module(engine)

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def test_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("shared", 1.0 + dataloader_idx)
            self.log(
                f"only_{dataloader_idx}", 10.0 * (dataloader_idx + 1), add_dataloader_idx=False
            )

        def on_test_epoch_end(self):
            self.log("everyone", 3.0)

    loaders = [DataLoader(TensorDataset(torch.randn(4, 4)), batch_size=2) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = Lm.Trainer(**QUIET).test(M(), loaders, verbose=False)
    assert results == [
        {"shared/dataloader_idx_0": 1.0, "only_0": 10.0, "everyone": 3.0},
        {"shared/dataloader_idx_1": 2.0, "only_1": 20.0, "everyone": 3.0},
    ]


def test_eval_step_values_go_to_the_logger_per_dataloader():
    """Several val loaders: each one's step values are sent alone, on its own step axis
    (Lightning's test_eval_step_logging); before, the other loader's last value rode along and
    the steps ran on across loaders."""
    from runtime.loggers import Logger

    calls = []

    class Spy(Logger):
        def log_metrics(self, metrics, step=None):
            if any(k.startswith("v/") for k in metrics):
                calls.append((sorted(metrics), step))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    class M(RegModel):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("v", float(batch_idx), on_step=True, on_epoch=False)

    val = [loader(n=16), loader(n=16)]
    trainer = L.Trainer(**quiet(max_epochs=1, logger=Spy(), limit_val_batches=2))
    trainer.validate(M(), val, verbose=False)
    assert calls == [
        (["v/dataloader_idx_0"], 0),
        (["v/dataloader_idx_0"], 1),
        (["v/dataloader_idx_1"], 0),
        (["v/dataloader_idx_1"], 1),
    ]


@pytest.mark.parametrize("engine", engines())
def test_forked_names_put_the_dataloader_suffix_last(engine):
    Lm = importlib.import_module(engine)

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def test_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("loss", 1.0, on_step=True, on_epoch=True)

    loaders = [DataLoader(TensorDataset(torch.randn(4, 4)), batch_size=2) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Lm.Trainer(**QUIET)
        results = trainer.test(M(), loaders, verbose=False)
    assert set(results[0]) == {"loss_epoch/dataloader_idx_0"}
    assert "loss_step/dataloader_idx_1" in trainer.logged_metrics


@pytest.mark.parametrize(
    "argument",
    ["limit_train_batches", "limit_val_batches", "overfit_batches", "val_check_interval"],
)
@pytest.mark.parametrize("value", [1, 1.0])
def test_an_explicit_one_says_how_it_was_understood(caplog, argument, value):
    import logging

    with caplog.at_level(logging.INFO):
        L.Trainer(**{argument: value})
    assert f"`Trainer({argument}={value})` was configured" in caplog.text


def test_fast_dev_run_does_not_announce_its_own_limits(caplog):
    import logging

    with caplog.at_level(logging.INFO):
        L.Trainer(fast_dev_run=1)
    assert "was configured" not in caplog.text


def test_csv_logger_flushes_every_n_steps_and_exposes_its_buffer(tmp_path):
    import os

    from runtime.loggers import CSVLogger

    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=2)
    logger.log_metrics({"a": 1.0}, step=0)
    assert logger.experiment.metrics and not os.path.exists(logger.experiment.metrics_file_path)
    logger.log_metrics({"a": 2.0}, step=1)  # second step: written
    assert not logger.experiment.metrics
    with open(logger.experiment.metrics_file_path) as f:
        assert len(f.readlines()) == 3
    # a logger pointed at a folder that holds an earlier run's metrics says so when it starts
    again = CSVLogger(tmp_path, version=0)
    with pytest.warns(UserWarning, match="Experiment logs directory .* exists and is not empty"):
        assert again.experiment.metrics_file_path.endswith("metrics.csv")


@pytest.mark.parametrize(
    ("only_zero", "world", "rank", "expected"),
    [
        (False, 1, 0, "bar"),
        (False, 2, 1, "[rank: 1] bar"),
        (True, 2, 0, "[rank: 0] bar"),
        (True, 2, 1, None),
    ],
)
def test_early_stopping_logs_like_lightning(only_zero, world, rank, expected, caplog):
    """Subclasses and users reach EarlyStopping's Lightning-named helpers
    (_log_info, _evaluate_stopping_criteria, _run_early_stopping_check)."""
    import logging
    from types import SimpleNamespace

    from runtime.callbacks import EarlyStopping

    with caplog.at_level(logging.INFO, logger="runtime.callbacks.early_stopping"):
        EarlyStopping._log_info(
            SimpleNamespace(global_rank=rank, world_size=world), "bar", only_zero
        )
    assert [r.getMessage() for r in caplog.records] == ([expected] if expected else [])
    es = EarlyStopping("x", patience=0)
    assert es._evaluate_stopping_criteria(torch.tensor(1.0))[0] is False
    assert callable(es._run_early_stopping_check)


def test_log_dict_refuses_nested_dicts():
    with pytest.raises(ValueError, match="nested dictionaries cannot be logged"):
        RegModel().log_dict({"nested": {"nested": 1}})


def test_checkpoint_name_formatting_follows_lightning(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path)
    assert cb._format_checkpoint_name("", {"epoch": 3, "step": 2}) == "epoch=3-step=2"
    assert cb._format_checkpoint_name(None, {"epoch": 3, "step": 2}, prefix="test") == (
        "test-epoch=3-step=2"
    )
    assert cb._format_checkpoint_name("ckpt", {}, prefix="test") == "test-ckpt"
    assert cb._format_checkpoint_name("{epoch:03d}-{acc}", {"epoch": 3, "acc": 0.03}) == (
        "epoch=003-acc=0.03"
    )
    plain = cb._format_checkpoint_name(
        "{epoch:03d}-{acc}", {"epoch": 3, "acc": 0.03}, auto_insert_metric_name=False
    )
    assert plain == "003-0.03"


def test_plateau_scheduler_reads_its_monitor_through_the_epoch_loop():
    seen = []

    class M(RegModel):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", 1.0)

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}

    trainer = L.Trainer(**quiet(max_epochs=2))
    original = trainer.fit_loop.epoch_loop._get_monitor_value

    def spy(key):
        seen.append(key)
        return original(key)

    trainer.fit_loop.epoch_loop._get_monitor_value = spy
    trainer.fit(M(), loader(n=16), loader(n=16))
    assert seen == ["val_loss", "val_loss"]


def test_callbacks_log_with_self_log():
    """Gap 8 of issue 11: `self.log` inside a Callback hook (Lightning attaches the module's
    log/log_dict to every callback)."""

    class LoggingCallback(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.log("from_epoch_start", 2.0)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.log_dict({"from_batch_end": 3.0})

    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[LoggingCallback()]))
    trainer.fit(RegModel(), loader(n=16))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert metrics["from_epoch_start"] == 2.0 and metrics["from_batch_end"] == 3.0


def test_evaluating_without_a_model_needs_a_best_checkpoint(tmp_path):
    """As Lightning: ``trainer.test()`` after ``fit`` means the best checkpoint; without a
    ModelCheckpoint that is an error (it ran on the current weights before, silently)."""
    trainer = L.Trainer(**quiet(max_epochs=1, default_root_dir=tmp_path))
    trainer.fit(RegModel(), loader(n=16))
    with pytest.raises(ValueError, match="`ModelCheckpoint` is not configured"):
        trainer.validate(dataloaders=loader(n=16))
    trainer = L.Trainer(**quiet(max_epochs=1, default_root_dir=tmp_path, enable_checkpointing=True))
    trainer.fit(RegModel(), loader(n=16))
    with pytest.warns(UserWarning, match="The best model of the previous `fit` call will be used"):
        trainer.validate(dataloaders=loader(n=16))
    assert trainer.ckpt_path == trainer.checkpoint_callback.best_model_path


# --------------------------------------------------- gaps found when re-checking issue 11
def _per_step_run(engine):
    """A Python float logged per step (and per epoch) from training_step, a scheduler stepped
    every batch: what callback_metrics holds and the learning rate each on_train_batch_end
    sees."""
    Lm = importlib.import_module(engine)
    seen = {"types": [], "lrs": []}

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            self.log("plain", 1.5, on_step=True, on_epoch=False)
            self.log("both", float(batch_idx), on_step=True, on_epoch=True)
            return self.layer(batch[0]).pow(2).mean()

        def on_train_batch_end(self, outputs, batch, batch_idx):
            cm = self.trainer.callback_metrics
            seen["types"].append((type(cm["plain"]).__name__, type(cm["both_step"]).__name__))
            seen["lrs"].append(self.optimizers().param_groups[0]["lr"])

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    data = DataLoader(TensorDataset(torch.randn(12, 4)), batch_size=4)
    trainer = Lm.Trainer(max_epochs=1, **QUIET)
    trainer.fit(M(), data)
    final = {k: type(v).__name__ for k, v in trainer.callback_metrics.items()}
    return seen, final


@pytest.mark.parametrize("engine", engines())
def test_numbers_logged_per_step_become_tensors_and_step_schedulers_step_before_batch_end(
    engine,
):
    """A Python number logged per step is a tensor in callback_metrics (as Lightning), during
    the epoch and after it; a step-interval scheduler has stepped when on_train_batch_end runs
    (Lightning 2.6 steps it before that hook: 0.5, 0.25, 0.125 here)."""
    seen, final = _per_step_run(engine)
    assert seen["types"] == [("Tensor", "Tensor")] * 3
    assert final == dict.fromkeys(["plain", "both", "both_step", "both_epoch"], "Tensor")
    assert seen["lrs"] == [0.5, 0.25, 0.125]


def test_ckpt_path_last_without_a_last_checkpoint_warns_and_starts_fresh(tmp_path):
    """`fit(ckpt_path="last")` with no last checkpoint in the folder: Lightning's warning, and
    training starts from the weights as they are (no error)."""
    cb = ModelCheckpoint(dirpath=tmp_path / "none")
    trainer = L.Trainer(**{**QUIET, "enable_checkpointing": True}, max_epochs=1, callbacks=[cb])
    with pytest.warns(UserWarning, match='ckpt_path="last"\\) is set, but there is no last'):
        trainer.fit(RegModel(), loader(n=16), ckpt_path="last")
    assert trainer.global_step == 2


@pytest.mark.parametrize("engine", engines())
def test_log_dict_of_a_metric_collection_keeps_its_compute_groups(engine):
    """`self.log_dict(MetricCollection(..., compute_groups=True))`: the metrics of a group keep
    sharing one state (Lightning asks the collection not to copy it)."""
    tm = pytest.importorskip("torchmetrics")
    Lm = importlib.import_module(engine)
    shared = []

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 3)
            self.metrics = tm.MetricCollection(
                [
                    tm.classification.MulticlassAccuracy(num_classes=3, average="macro"),
                    tm.classification.MulticlassRecall(num_classes=3, average="macro"),
                ],
                compute_groups=True,
            )

        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self.layer(x)
            self.metrics.update(logits.detach(), y)
            self.log_dict(self.metrics, on_step=False, on_epoch=True)
            # (_modules: indexing the collection would copy the states itself)
            acc, rec = (
                self.metrics._modules["MulticlassAccuracy"],
                self.metrics._modules["MulticlassRecall"],
            )
            shared.append(acc.tp is rec.tp)
            return torch.nn.functional.cross_entropy(logits, y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    data = DataLoader(
        TensorDataset(torch.randn(24, 4, generator=g), torch.randint(0, 3, (24,), generator=g)),
        batch_size=8,
    )
    torch.manual_seed(0)
    trainer = Lm.Trainer(max_epochs=1, **QUIET)
    trainer.fit(M(), data)
    assert shared[1:] == [True, True]  # grouped once the first update found the group
    cm = trainer.callback_metrics
    # macro accuracy is the macro recall: one group, one state, the same value
    assert float(cm["MulticlassAccuracy"]) == float(cm["MulticlassRecall"]) > 0


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_callback_states_are_restored_in_every_stage(tmp_path, engine, stage):
    """Lightning 2.6 restores callback states (and calls their on_load_checkpoint) for
    validate/test/predict with a ckpt_path too, not only for fit; the connector's restore
    steps exist by Lightning's names and restore_loops loads only the running stage's loop."""
    Lm = importlib.import_module(engine)
    events = []

    class Stateful(Lm.Callback):
        def __init__(self):
            self.count = 0

        def state_dict(self):
            return {"count": self.count}

        def load_state_dict(self, state):
            self.count = state["count"]
            events.append("load_state_dict")

        def on_load_checkpoint(self, trainer, pl_module, checkpoint):
            events.append("on_load_checkpoint")

        def on_train_batch_end(self, *args):
            self.count += 1

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def validation_step(self, batch, batch_idx):
            self.log("v", self.layer(batch[0]).sum())

        test_step = validation_step

        def predict_step(self, batch, batch_idx):
            return self.layer(batch[0])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(12, 4)), batch_size=4)
    trainer = Lm.Trainer(max_epochs=1, default_root_dir=tmp_path, callbacks=[Stateful()], **QUIET)
    trainer.fit(M(), data)
    path = tmp_path / "x.ckpt"
    trainer.save_checkpoint(path)

    fresh = Stateful()
    later = Lm.Trainer(default_root_dir=tmp_path, callbacks=[fresh], **QUIET)
    getattr(later, stage)(M(), data, ckpt_path=path)
    assert fresh.count == 3 and events == ["on_load_checkpoint", "load_state_dict"]

    connector = later._checkpoint_connector
    for name in ("restore_model", "restore_datamodule", "restore_callbacks", "restore_loops"):
        assert callable(getattr(connector, name))
    loaded = []
    for loop_stage in ("validate", "test"):
        loop = getattr(later, f"{loop_stage}_loop")
        loop.load_state_dict = lambda state, s=loop_stage: loaded.append(s)
    later.state.fn = type(later.state.fn)("validate") if later.state.fn else "validate"
    connector.resume_start(path)
    connector.restore_loops()
    connector.resume_end()
    assert loaded == ["validate"]
