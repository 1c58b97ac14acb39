"""Behaviour that Lightning's own tests reach through private members (``ModelCheckpoint``'s
save steps, ``Trainer._checkpoint_connector``, ...): the runtime keeps the same semantics."""

from __future__ import annotations

import os

import pytest
import torch

import runtime as L
from runtime.callbacks import ModelCheckpoint
from tests.helpers.models import RegModel, loader, quiet


class _Score(RegModel):
    """Logs ``score`` = -epoch: the best file by ``mode="max"`` is the first epoch's."""

    def on_train_epoch_end(self):
        self.log("score", -float(self.current_epoch))


def test_checkpoint_file_names_itself_best_and_last(tmp_path):
    """As Lightning: best_model_path / last_model_path are set before the file is written, so
    the callback state inside a file names that very file."""
    cb = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(**quiet(max_epochs=2, callbacks=[cb], enable_checkpointing=True))
    trainer.fit(RegModel(), loader(n=16))
    best = torch.load(cb.best_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert best["best_model_path"] == cb.best_model_path
    last = torch.load(cb.last_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert last["last_model_path"] == cb.last_model_path


def test_save_last_link_points_at_the_latest_save(tmp_path):
    """save_last="link": last.ckpt is a relative link to the file the latest save wrote (not
    to the best one), as Lightning."""
    cb = ModelCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_top_k=-1, save_last="link"
    )
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[cb], enable_checkpointing=True))
    trainer.fit(_Score(), loader(n=16))
    link = tmp_path / "last.ckpt"
    assert os.path.islink(link) and not os.path.isabs(os.readlink(link))
    assert (
        os.path.realpath(link) == cb._last_checkpoint_saved == str(tmp_path / "epoch=2-step=6.ckpt")
    )
    assert cb.best_model_path == str(tmp_path / "epoch=0-step=2.ckpt")


def test_save_last_link_needs_a_local_dirpath():
    cb = ModelCheckpoint(dirpath="memory://somewhere", save_last="link")
    assert cb.dirpath == "memory://somewhere"  # not turned into a local path
    with pytest.raises(ValueError, match="only supported for local file paths"):
        cb.setup(L.Trainer(**quiet()), RegModel(), stage="fit")


def _fitted(tmp_path, **kw):
    cb = ModelCheckpoint(dirpath=tmp_path)
    trainer = L.Trainer(**quiet(max_epochs=1, callbacks=[cb], enable_checkpointing=True, **kw))
    model = RegModel()
    trainer.fit(model, loader(n=16))
    return trainer, model


def test_resuming_fit_from_a_weights_only_file_raises_keyerror(tmp_path):
    """As Lightning: a training state cannot come from a file without optimizer states."""
    trainer, model = _fitted(tmp_path)
    path = str(tmp_path / "weights.ckpt")
    trainer.save_checkpoint(path, weights_only=True)
    with pytest.raises(KeyError, match="checkpoint contains only the model"):
        trainer._checkpoint_connector.restore(path)
    again = L.Trainer(**quiet(max_epochs=2))
    with pytest.raises(KeyError, match="checkpoint contains only the model"):
        again.fit(RegModel(), loader(n=16), ckpt_path=path)


def test_checkpoint_connector_parses_ckpt_path(tmp_path):
    trainer, model = _fitted(tmp_path)
    best = trainer.checkpoint_callback.best_model_path
    parse = trainer._checkpoint_connector._parse_ckpt_path
    assert parse("validate", None, model_provided=True, model_connected=True) is None
    with pytest.warns(UserWarning, match="The best model of the previous `fit` call will be used"):
        assert parse("validate", None, model_provided=False, model_connected=True) == best
    assert parse("test", "best", model_provided=False, model_connected=True) == best
    assert trainer._checkpoint_connector.dump_checkpoint()["global_step"] == 2

    cbs = [ModelCheckpoint(monitor="a"), ModelCheckpoint(monitor="b")]
    two = L.Trainer(**quiet(callbacks=cbs, enable_checkpointing=True))
    two.checkpoint_callback.best_model_path = "a.ckpt"
    with pytest.warns(UserWarning, match="best checkpoint path from first checkpoint callback"):
        assert two._checkpoint_connector._parse_ckpt_path("test", "best", False, True) == "a.ckpt"

    dev = L.Trainer(**quiet(fast_dev_run=True, enable_checkpointing=True))
    with pytest.raises(ValueError, match=r"with `fast_dev_run=True`. .* pass an exact checkpoint"):
        dev._checkpoint_connector._parse_ckpt_path("test", "best", False, True)


def test_loop_state_in_a_checkpoint_holds_plain_values(tmp_path):
    """The exact-resume random state inside ``loops`` is bytes, not tensors: two checkpoints'
    loop states compare with ``==`` (Lightning's restart tests compare them leaf by leaf)."""
    cb = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1)
    trainer = L.Trainer(**quiet(max_steps=3, callbacks=[cb], enable_checkpointing=True))
    trainer.fit(RegModel(), loader(n=32, shuffle=True, seed=3))

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            return 1
        if isinstance(obj, dict):
            return sum(tensors(v) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return sum(tensors(v) for v in obj)
        return 0

    path = str(tmp_path / "epoch=0-step=2.ckpt")
    loops = torch.load(path, weights_only=True)["loops"]
    assert tensors(loops) == 0
    assert loops == torch.load(path, weights_only=True)["loops"]


def test_results_are_read_by_lightnings_keys():
    """``trainer._results["<hook>.<name>[.<dataloader_idx>]"]`` gives the accumulation as
    Lightning's: ``value`` (sum of value x batch size for a mean) and ``cumulated_batch_size``;
    an epoch hook logs with batch size 1 (the last batch is not reused)."""
    seen = {}

    class M(RegModel):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("v", 2.0 * (dataloader_idx + 1))

        def on_validation_epoch_end(self):
            self.log("end", 3.0)
            r = self.trainer._results
            seen["end"] = float(r["on_validation_epoch_end.end"].value)
            for i in (0, 1):
                acc = r[f"validation_step.v.{i}"]
                seen[i] = (float(acc.value), acc.cumulated_batch_size)

    trainer = L.Trainer(**quiet(max_epochs=1, limit_val_batches=2))
    trainer.fit(M(), loader(n=16), [loader(n=16, batch_size=4), loader(n=16, batch_size=4)])
    assert seen == {"end": 3.0, 0: (16.0, 8), 1: (32.0, 8)}


def test_tensorboard_hp_metric_goes_through_log_metrics(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from runtime.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path)
    calls = []
    monkeypatch.setattr(logger, "log_metrics", lambda *a, **k: calls.append((a, k)))
    logger.log_hyperparams({"lr": 0.1})
    assert calls == [(({"hp_metric": -1}, None), {})]


def test_train_loader_yielding_none_skips_the_step(monkeypatch):
    """As Lightning: a None batch warns, runs no batch-start hooks and no training_step; the
    batch-end hooks see None outputs."""
    from torch.utils.data import DataLoader
    from torch.utils.data._utils.collate import default_collate

    import runtime.rank_zero as rz

    monkeypatch.setattr(rz, "_warned", set())
    seen = []

    class M(RegModel):
        def on_train_batch_start(self, batch, batch_idx):
            seen.append(("start", batch_idx))

        def on_train_batch_end(self, outputs, batch, batch_idx):
            seen.append(("end", batch_idx, outputs is None))

    calls = []

    def collate(items):
        calls.append(1)
        return None if len(calls) % 2 == 1 else default_collate(items)

    data = loader(n=8, batch_size=1).dataset
    nones = [True, False, True, False]
    trainer = L.Trainer(**quiet(max_epochs=1, limit_train_batches=4))
    with pytest.warns(UserWarning, match="train_dataloader yielded None"):
        trainer.fit(M(), DataLoader(data, batch_size=1, collate_fn=collate))
    for i, none in enumerate(nones):
        assert (("start", i) in seen) is not none
        assert ("end", i, none) in seen
    assert trainer.global_step == nones.count(False)


def test_automatic_optimization_run_by_hand():
    """``fit_loop.epoch_loop.automatic_optimization.run(optimizer, batch_idx, kwargs)`` steps
    once and returns the step's outputs; ``_make_closure`` gives the loss when called."""

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self(x), y)

    model = M()
    trainer = L.Trainer(**quiet(max_epochs=1, limit_train_batches=1))
    trainer.fit(model, loader(n=16))
    batch = next(iter(loader(n=16)))
    auto = trainer.fit_loop.epoch_loop.automatic_optimization
    before = [p.detach().clone() for p in model.parameters()]
    out = auto.run(trainer.optimizers[0], 0, {"batch": batch, "batch_idx": 0})
    assert set(out) == {"loss"} and out["loss"].ndim == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    loss = auto._make_closure({"batch": batch, "batch_idx": 0}, trainer.optimizers[0], 0)()
    assert torch.isclose(loss, model.training_step(batch, 0).detach())


def test_toggle_optimizer_records_every_parameter_state():
    """As Lightning: toggling records the requires_grad of every optimizer's parameters (one
    optimizer too) and untoggling puts them back and clears the record."""
    from unittest.mock import Mock

    model = RegModel()
    model.trainer = Mock()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.trainer.optimizers = [opt]
    assert model._param_requires_grad_state == {}
    with model.toggled_optimizer(opt):
        assert len(model._param_requires_grad_state) == len(list(model.parameters()))
        assert all(p.requires_grad for p in model.parameters())
    assert model._param_requires_grad_state == {}


def test_current_fx_name_names_the_running_hook():
    seen = []

    class M(RegModel):
        def on_train_epoch_start(self):
            seen.append(self._current_fx_name)

    model = M()
    assert model._current_fx_name is None
    L.Trainer(**quiet(max_epochs=1, limit_train_batches=1)).fit(model, loader(n=16))
    assert seen == ["on_train_epoch_start"] and model._current_fx_name is None


def test_accelerator_connector_strategy_is_the_trainers():
    from runtime.strategies import SingleDeviceStrategy

    trainer = L.Trainer(**quiet())
    strategy = SingleDeviceStrategy(device=torch.device("cpu"))
    trainer._accelerator_connector.strategy = strategy
    assert trainer.strategy is strategy
    with trainer.init_module():
        layer = torch.nn.Linear(2, 2)
    assert layer.weight.dtype == torch.float32


def test_current_fx_name_can_be_set_outside_a_run():
    model = RegModel()
    model._current_fx_name = "training_step"  # Lightning's is a plain attribute
    assert model._current_fx_name == "training_step"
    model._current_fx_name = None
    assert model._current_fx_name is None


def test_a_run_adds_no_attributes_to_the_trainer(tmp_path):
    """The run state has one owner: the Trainer declares every attribute its loops set (a fit,
    a resumed fit, validate, test and predict add none)."""
    trainer = L.Trainer(**quiet(max_epochs=1, default_root_dir=tmp_path, enable_checkpointing=True))
    declared = set(vars(trainer))
    model = RegModel()
    trainer.fit(model, loader(n=16), loader(n=8))
    trainer.validate(model, loader(n=8), verbose=False)
    trainer.test(model, loader(n=8), verbose=False)
    trainer.predict(model, loader(n=8))
    again = L.Trainer(**quiet(max_epochs=2, default_root_dir=tmp_path))
    declared_again = set(vars(again))
    again.fit(RegModel(), loader(n=16), ckpt_path=trainer.checkpoint_callback.best_model_path)
    assert set(vars(trainer)) - declared == set()
    assert set(vars(again)) - declared_again == set()
