"""The run state's owners as user code and callbacks reach them: the strategy (connected module,
precision plugin, ``backward``), the data connector, and the loop objects (``setup_data``,
``_evaluation_step``). Each test runs on the runtime and, when installed, on Lightning, with the
expected values written out.
"""

from __future__ import annotations

import importlib
from functools import partial, update_wrapper
from unittest import mock

import pytest
import torch
from torch.utils.data import DataLoader, Sampler, SequentialSampler, TensorDataset

from tests.helpers.engines import engine_module, engines

QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False)


def _data(n=16, batch_size=4, **kwargs):
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(n, 3, generator=g), torch.randn(n, 1, generator=g))
    return DataLoader(ds, batch_size=batch_size, **kwargs)


def _module(Lm, automatic=True):
    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)
            self.automatic_optimization = automatic

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            if self.automatic_optimization:
                return loss
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return M()


@pytest.mark.parametrize("engine", engines())
def test_loaders_attached_by_hand_follow_the_limits(engine):
    """``strategy.connect`` + ``_data_connector.attach_dataloaders`` + a loop's ``setup_data``
    size the loaders as a run would (no fit needed)."""
    Lm = importlib.import_module(engine)
    model = _module(Lm)
    trainer = Lm.Trainer(limit_train_batches=3, limit_val_batches=0.5, **QUIET)
    model.trainer = trainer
    trainer.strategy.connect(model)
    assert trainer.lightning_module is model
    trainer._data_connector.attach_dataloaders(
        model, train_dataloaders=_data(), val_dataloaders=[_data(), _data(n=8)]
    )
    trainer.fit_loop.setup_data()
    assert trainer.num_training_batches == 3
    trainer.fit_loop.epoch_loop.val_loop.setup_data()
    assert trainer.num_val_batches == [2, 1]
    assert len(trainer.val_dataloaders) == 2


@pytest.mark.parametrize("engine", engines())
def test_overfit_batches_reads_train_and_val_in_order(engine):
    """``overfit_batches`` replaces a shuffling or custom sampler by a SequentialSampler in the
    train and val loaders, with Lightning's warning."""
    Lm = importlib.import_module(engine)

    class Custom(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(reversed(range(self.n)))

        def __len__(self):
            return self.n

    model = _module(Lm)
    ds = _data().dataset
    trainer = Lm.Trainer(overfit_batches=2, max_epochs=1, num_sanity_val_steps=0, **QUIET)
    with pytest.warns(UserWarning, match="requested to overfit but enabled train dataloader"):
        trainer.fit(
            model,
            DataLoader(ds, sampler=Custom(len(ds)), batch_size=4),
            DataLoader(ds, shuffle=True, batch_size=4),
        )
    assert isinstance(trainer.train_dataloader.sampler, SequentialSampler)
    assert isinstance(trainer.val_dataloaders.sampler, SequentialSampler)


@pytest.mark.parametrize("engine", engines())
def test_every_validation_batch_goes_through_the_loop_objects_step(engine):
    Lm = importlib.import_module(engine)
    model = _module(Lm)
    trainer = Lm.Trainer(max_epochs=2, num_sanity_val_steps=1, limit_val_batches=3, **QUIET)
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    with mock.patch.object(val_loop, "_evaluation_step", wraps=val_loop._evaluation_step) as step:
        trainer.fit(model, _data(), [_data(), _data()])
    # sanity check: 1 batch per loader; then 3 per loader in each of 2 epochs
    assert step.call_count == 2 + 2 * 2 * 3
    with mock.patch.object(
        trainer.test_loop, "_evaluation_step", wraps=trainer.test_loop._evaluation_step
    ) as step:
        model.test_step = model.validation_step
        trainer.test(model, _data())
    assert step.call_count == 4


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("automatic", [True, False])
def test_backward_goes_through_the_strategy(engine, automatic):
    Lm = importlib.import_module(engine)
    model = _module(Lm, automatic=automatic)
    trainer = Lm.Trainer(max_epochs=1, limit_val_batches=0, **QUIET)
    strategy_cls = type(trainer.strategy)
    with mock.patch.object(strategy_cls, "backward", wraps=trainer.strategy.backward) as bwd:
        trainer.fit(model, _data())
    assert bwd.call_count == 4
    assert trainer.strategy.precision_plugin is not None


@pytest.mark.parametrize("engine", engines())
def test_init_module_creates_parameters_in_the_precision_dtype(engine):
    Lm = importlib.import_module(engine)
    trainer = Lm.Trainer(accelerator="cpu", precision="64-true", **QUIET)
    with trainer.init_module():
        layer = torch.nn.Linear(2, 2)
    assert layer.weight.dtype == torch.float64
    assert torch.get_default_dtype() == torch.float32
    trainer = Lm.Trainer(accelerator="cpu", precision="bf16-mixed", **QUIET)
    with trainer.init_module():
        layer = torch.nn.Linear(2, 2)
    assert layer.weight.dtype == torch.float32


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize(
    ("per_node", "node_rank", "local_rank", "called"),
    [
        (True, 0, 0, True),
        (True, 1, 0, True),
        (True, 0, 1, False),
        (False, 0, 0, True),
        (False, 1, 0, False),
        (False, 0, 1, False),
    ],
)
def test_prepare_data_runs_once_per_node_or_once_in_all(
    engine, per_node, node_rank, local_rank, called
):
    Lm = importlib.import_module(engine)
    trainer_cls = type(Lm.Trainer(**QUIET))

    class DM(Lm.LightningDataModule):
        def prepare_data(self):
            pass

    dm = DM()
    dm.prepare_data_per_node = per_node
    dm.prepare_data = mock.Mock(wraps=dm.prepare_data)
    with (
        mock.patch.object(trainer_cls, "node_rank", new_callable=mock.PropertyMock) as nr,
        mock.patch.object(trainer_cls, "local_rank", new_callable=mock.PropertyMock) as lr,
    ):
        nr.return_value, lr.return_value = node_rank, local_rank
        trainer = Lm.Trainer(**QUIET)
        trainer.datamodule = dm
        trainer._data_connector.prepare_data()
    assert dm.prepare_data.called is called


@pytest.mark.parametrize("engine", engines())
def test_a_hook_wrapped_around_none_is_not_overridden(engine, tmp_path):
    """A wrapper (``functools.update_wrapper``) around a hook set to None does not define it:
    loading a checkpoint skips ``configure_model``; ``on_load_checkpoint`` sees the
    hyper-parameters the module was rebuilt with."""
    Lm = importlib.import_module(engine)
    seen = {}

    def call(fn, *args):
        return fn(*args)

    class M(Lm.LightningModule):
        def __init__(self, width=2):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, width)
            hook = self.configure_model
            self.configure_model = update_wrapper(partial(call, hook), hook)

        def on_load_checkpoint(self, checkpoint):
            seen.update(checkpoint)

    M.configure_model = None
    trainer = Lm.Trainer(**QUIET)
    trainer.strategy.connect(M())
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = M.load_from_checkpoint(tmp_path / "m.ckpt", width=2)
    assert loaded.layer.out_features == 2
    assert seen["hyper_parameters"] == {"width": 2}


@pytest.mark.parametrize("engine", engines())
def test_a_loaded_fit_loop_restarts_where_the_checkpoint_was_saved(engine, tmp_path):
    """Loop state from a checkpoint: ``restarting`` until reset; a batch that failed in
    ``training_step`` is fetched again, a batch saved in ``on_train_batch_end`` counts as done,
    and the loop's own ``state_dict`` gives back what it loaded."""
    Lm = importlib.import_module(engine)
    callbacks = engine_module(engine, "callbacks")

    class Boom(Exception):
        pass

    class M(type(_module(Lm))):
        def training_step(self, batch, batch_idx):
            if self.current_epoch == 1 and batch_idx == 2:
                raise Boom
            return super().training_step(batch, batch_idx)

    trainer = Lm.Trainer(
        max_epochs=3,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[
            callbacks.OnExceptionCheckpoint(tmp_path),
            callbacks.ModelCheckpoint(tmp_path, every_n_train_steps=2, save_top_k=-1),
        ],
        logger=False,
        enable_progress_bar=False,
    )
    with pytest.raises(Boom):
        trainer.fit(M(), _data())
    saved = torch.load(tmp_path / "on_exception.ckpt", weights_only=False)["loops"]["fit_loop"]
    loop = trainer.fit_loop
    loop.restarting = loop.epoch_loop.restarting = False
    loop.load_state_dict(saved)
    assert loop.restarting and loop.epoch_loop.restarting
    assert loop.epoch_loop.automatic_optimization.restarting
    assert loop.state_dict() == saved
    loop.reset()
    loop.epoch_loop.reset()
    batches = loop.epoch_loop.batch_progress
    assert (batches.current.ready, batches.current.completed) == (2, 2)
    assert (loop.epoch_progress.current.ready, loop.epoch_progress.current.completed) == (2, 1)

    # saved by ModelCheckpoint in the last batch's on_train_batch_end (step 4 = end of epoch 0)
    end_of_epoch = torch.load(tmp_path / "epoch=0-step=4.ckpt", weights_only=False)
    loop.load_state_dict(end_of_epoch["loops"]["fit_loop"])
    loop.reset()
    loop.epoch_loop.reset()
    assert loop.epoch_progress.total.completed == 1
    assert (batches.total.completed, batches.current.ready) == (4, 0)


@pytest.mark.parametrize("engine", engines())
def test_warnings_lightning_gives_on_restore_and_predict(engine, tmp_path):
    """A missing hparams file is a warning (the checkpoint's own hyper-parameters are used); a
    checkpoint whose callbacks this Trainer lacks says which; a predict_step returning None
    warns."""
    Lm = importlib.import_module(engine)
    cbs = engine_module(engine, "callbacks")

    class Counter(cbs.Callback):
        def state_dict(self):
            return {"n": 1}

    model = _module(Lm)
    trainer = Lm.Trainer(max_epochs=1, callbacks=[Counter()], default_root_dir=tmp_path, **QUIET)
    trainer.fit(model, _data())
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    with pytest.warns(RuntimeWarning, match="Missing Tags"):
        type(model).load_from_checkpoint(path, hparams_file=tmp_path / "nope.yaml")
    trainer = Lm.Trainer(max_epochs=2, default_root_dir=tmp_path, **QUIET)
    with pytest.warns(UserWarning, match="Please add the following callbacks: .*Counter"):
        trainer.fit(model, _data(), ckpt_path=path)

    class NoPrediction(type(model)):
        def predict_step(self, batch, batch_idx):
            return None

    with pytest.warns(UserWarning, match="predict returned None"):
        Lm.Trainer(**QUIET).predict(NoPrediction(), _data())


@pytest.mark.parametrize("engine", engines())
def test_logged_metrics_are_live_in_epoch_end_hooks(engine):
    """``trainer.logged_metrics`` in ``on_validation_epoch_end`` holds this epoch's reduced
    value (ModelCheckpoint filenames and user hooks read it there)."""
    Lm = importlib.import_module(engine)
    seen = []

    class M(type(_module(Lm))):
        def validation_step(self, batch, batch_idx):
            self.log("val_log", float(self.current_epoch * 10 + batch_idx))

        def on_validation_epoch_end(self):
            if not self.trainer.sanity_checking:
                seen.append(float(self.trainer.logged_metrics["val_log"]))
                seen.append(float(self.trainer.progress_bar_metrics.get("val_log", -1)))

    trainer = Lm.Trainer(max_epochs=2, limit_val_batches=2, **QUIET)
    trainer.fit(M(), _data(), _data())
    assert seen == [0.5, -1.0, 10.5, -1.0]


@pytest.mark.parametrize("engine", engines())
def test_eval_step_values_reach_the_progress_bar_metrics(engine):
    Lm = importlib.import_module(engine)

    class Logs(Lm.Callback):
        def on_validation_batch_end(self, trainer, pl_module, *args):
            pl_module.log("both", 1.0, on_step=True, on_epoch=True, prog_bar=True)
            pl_module.log("stp", 2.0, on_step=True, on_epoch=False, prog_bar=True)

    trainer = Lm.Trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[Logs()], **QUIET)
    trainer.fit(_module(Lm), _data(), _data())
    assert sorted(trainer.progress_bar_metrics) == ["both_epoch", "both_step", "stp"]
    assert "stp" not in trainer.callback_metrics


@pytest.mark.parametrize("engine", engines())
def test_nested_lightning_modules_share_the_trainer_reference(engine):
    Lm = importlib.import_module(engine)
    outer, inner = Lm.LightningModule(), Lm.LightningModule()
    outer.inner = inner
    trainer = Lm.Trainer(**QUIET)
    outer.trainer = trainer
    assert inner.trainer is trainer


@pytest.mark.parametrize("engine", engines())
def test_clip_gradients_refuses_an_algorithm_other_than_the_trainers(engine):
    Lm = importlib.import_module(engine)
    errors = engine_module(engine, "errors")

    class M(type(_module(Lm))):
        def configure_gradient_clipping(
            self, optimizer, gradient_clip_val, gradient_clip_algorithm
        ):
            self.clip_gradients(optimizer, gradient_clip_algorithm="value")

    trainer = Lm.Trainer(max_epochs=1, gradient_clip_algorithm="norm", **QUIET)
    with pytest.raises(errors.MisconfigurationException, match="gradient_clip_algorithm='norm'"):
        trainer.fit(M(), _data())


@pytest.mark.parametrize("engine", engines())
def test_hyperparameters_of_module_and_data_module_are_merged_or_refused(engine, tmp_path):
    """Only what save_hyperparameters() saved is logged; a key both hold with different values
    stops the run (Lightning's 'Error while merging hparams')."""
    Lm = importlib.import_module(engine)

    class DM(Lm.LightningDataModule):
        def __init__(self, data_dir="foo"):
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return _data()

    class M(type(_module(Lm))):
        def __init__(self, data_dir="foo", width=3):
            super().__init__()
            self.save_hyperparameters()

    class Recorder(Lm.pytorch.loggers.Logger if engine == "lightning" else Lm.loggers.Logger):
        def __init__(self):
            super().__init__()
            self.seen = []

        @property
        def name(self):
            return "rec"

        @property
        def version(self):
            return 0

        def log_hyperparams(self, params, *args, **kwargs):
            self.seen.append(dict(params))

        def log_metrics(self, metrics, step=None):
            pass

    rec = Recorder()
    trainer = Lm.Trainer(
        max_epochs=1,
        logger=rec,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(M(), datamodule=DM())
    assert rec.seen == [{"data_dir": "foo", "width": 3}]
    rec = Recorder()
    trainer = Lm.Trainer(
        max_epochs=1,
        logger=rec,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_module(Lm), _data())  # saved nothing: nothing logged
    assert rec.seen == []
    trainer = Lm.Trainer(
        max_epochs=1,
        logger=Recorder(),
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(RuntimeError, match="Error while merging hparams"):
        trainer.fit(M(data_dir="bar"), datamodule=DM())


@pytest.mark.parametrize("engine", engines())
def test_a_child_module_built_in_a_parents_init_gets_its_arguments_too(engine):
    Lm = importlib.import_module(engine)

    class Child(Lm.LightningModule):
        def __init__(self, dropout, init_method):
            super().__init__()
            self.save_hyperparameters(ignore=["dropout"])

    class Parent(Lm.LightningModule):
        def __init__(self, batch_size):
            super().__init__()
            self.child = Child(dropout=0.1, init_method="xavier")

    assert Parent(batch_size=64).child.hparams == {"init_method": "xavier", "batch_size": 64}


@pytest.mark.parametrize("engine", engines())
def test_progress_bar_counts_validation_only_in_epochs_that_validate(engine):
    Lm = importlib.import_module(engine)
    seen = []

    class M(type(_module(Lm))):
        def on_train_epoch_end(self):
            seen.append(self.trainer.progress_bar_callback.total_val_batches)

    trainer = Lm.Trainer(
        max_epochs=4,
        num_sanity_val_steps=0,
        limit_val_batches=2,
        check_val_every_n_epoch=2,
        logger=False,
        enable_checkpointing=False,
    )
    trainer.fit(M(), _data(), _data())
    assert seen == [0, 2, 0, 2]


@pytest.mark.parametrize("engine", engines())
def test_an_unset_max_epochs_is_a_possible_user_warning(engine):
    Lm = importlib.import_module(engine)
    rz = engine_module(engine, "warnings")

    class M(type(_module(Lm))):
        def training_step(self, batch, batch_idx):
            self.trainer.should_stop = True
            return super().training_step(batch, batch_idx)

    trainer = Lm.Trainer(max_epochs=None, limit_train_batches=1, **QUIET)
    with pytest.warns(rz.PossibleUserWarning, match="`max_epochs` was not set"):
        trainer.fit(M(), _data())
    assert trainer.max_epochs == 1000


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("fn", ["validate", "test", "predict"])
def test_setup_knows_the_stage(engine, fn):
    Lm = importlib.import_module(engine)
    seen = []

    class M(type(_module(Lm))):
        def setup(self, stage):
            seen.append((stage.value, self.trainer.state.stage.value))

        def test_step(self, batch, batch_idx):
            pass

        def predict_step(self, batch, batch_idx):
            return batch

    getattr(Lm.Trainer(**QUIET), fn)(M(), _data())
    stage = {"validate": "validate", "test": "test", "predict": "predict"}[fn]
    assert seen == [(stage, stage)]


@pytest.mark.parametrize("engine", engines())
def test_logging_to_a_logger_without_one_warns(engine):
    Lm = importlib.import_module(engine)

    class M(type(_module(Lm))):
        def training_step(self, batch, batch_idx):
            self.log("epoch", -batch_idx, logger=True)
            return super().training_step(batch, batch_idx)

    trainer = Lm.Trainer(max_epochs=1, limit_train_batches=2, **QUIET)
    with pytest.warns(UserWarning, match=r"log\('epoch', ..., logger=True\)` but have no logger"):
        trainer.fit(M(), _data())


def _logging_cases():
    return [
        (lambda m: m.log("foo/dataloader_idx_0", -1.0), "with the key `foo/dataloader_idx_0`"),
        (
            lambda m: (m.log("foo", -1.0, prog_bar=False), m.log("foo", -1.0, prog_bar=True)),
            r"self.log\(foo, ...\)` twice in `training_step`",
        ),
        (
            lambda m: m.log("foo", -1.0, reduce_fx=torch.argmax),
            r"reduce_fx={min,max,mean,sum}\)` are supported",
        ),
        (lambda m: m.log("foo", torch.tensor([1.0, 2.0])), "tensor must have a single element"),
    ]


@pytest.mark.parametrize("engine", engines())
@pytest.mark.parametrize("case", range(4))
def test_logging_mistakes_are_refused_with_lightnings_words(engine, case):
    Lm = importlib.import_module(engine)
    call, match = _logging_cases()[case]

    class M(type(_module(Lm))):
        def training_step(self, batch, batch_idx):
            call(self)
            return super().training_step(batch, batch_idx)

    trainer = Lm.Trainer(max_epochs=1, limit_train_batches=1, **QUIET)
    with pytest.raises((ValueError, Exception), match=match):
        trainer.fit(M(), _data())


@pytest.mark.parametrize("engine", engines())
def test_a_logged_metric_must_be_an_attribute(engine):
    tm = pytest.importorskip("torchmetrics")
    Lm = importlib.import_module(engine)

    class M(type(_module(Lm))):
        def __init__(self, keep):
            super().__init__()
            if keep:
                self.acc = tm.MeanMetric()

        def training_step(self, batch, batch_idx):
            self.log("m", tm.MeanMetric())
            return super().training_step(batch, batch_idx)

    for keep, match in ((False, "setting an attribute"), (True, r"one of \['acc'\]")):
        trainer = Lm.Trainer(max_epochs=1, limit_train_batches=1, **QUIET)
        with pytest.raises(Exception, match=match):
            trainer.fit(M(keep), _data())


@pytest.mark.parametrize("engine", engines())
def test_a_metric_added_in_a_later_stages_setup_can_be_logged(engine):
    tm = pytest.importorskip("torchmetrics")
    Lm = importlib.import_module(engine)

    class M(type(_module(Lm))):
        def setup(self, stage):
            self.add_module(f"m_{stage.value}", tm.MeanMetric())

        def training_step(self, batch, batch_idx):
            self.m_fit.update(1.0)
            self.log("m", self.m_fit)
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            self.m_validate.update(2.0)
            self.log("v", self.m_validate)

    model = M()
    trainer = Lm.Trainer(max_epochs=1, limit_val_batches=0, **QUIET)
    trainer.fit(model, _data())
    (out,) = Lm.Trainer(**QUIET).validate(model, _data(), verbose=False)
    assert out["v"] == 2.0


def _plateau_model(Lm, strict: bool):
    """A module whose plateau scheduler monitors a metric nobody logs."""
    model = _module(Lm)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    model.configure_optimizers = lambda: {
        "optimizer": opt,
        "lr_scheduler": {"scheduler": sched, "monitor": "giraffe", "strict": strict},
    }
    return model


@pytest.mark.parametrize("engine", engines())
def test_plateau_scheduler_without_its_metric_under_strict_false_warns_and_skips(engine):
    Lm = importlib.import_module(engine)
    model = _plateau_model(Lm, strict=False)
    trainer = Lm.Trainer(max_epochs=1, **QUIET)
    with pytest.warns(RuntimeWarning, match="which is not available but strict is set to `False`"):
        trainer.fit(model, _data())
    assert getattr(trainer.lr_scheduler_configs[0], "opt_idx", None) is None  # not filled in


@pytest.mark.parametrize("engine", engines())
def test_an_epoch_cut_short_by_max_steps_does_not_step_plateau_schedulers(engine):
    """strict=True with a metric nobody logs: no error, because the only epoch is cut short by
    max_steps and Lightning steps plateau schedulers only at the end of a whole epoch."""
    Lm = importlib.import_module(engine)
    model = _plateau_model(Lm, strict=True)
    Lm.Trainer(max_epochs=None, max_steps=1, **QUIET).fit(model, _data())
    errors = engine_module(engine, "errors")
    with pytest.raises(errors.MisconfigurationException, match="which is not available"):
        Lm.Trainer(max_epochs=1, **QUIET).fit(model, _data())
