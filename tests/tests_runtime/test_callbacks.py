"""ModelCheckpoint, EarlyStopping, LearningRateMonitor, the progress bar and ModelSummary."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import runtime as L
from runtime.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from runtime.callbacks.early_stopping import EarlyStoppingReason
from runtime.errors import MisconfigurationException
from runtime.loggers import CSVLogger
from tests.helpers.engines import engine_module, engines
from tests.helpers.models import RegModel, loader, quiet


class Scripted(RegModel):
    """val_loss follows a script per epoch, so top-k and patience decisions are predictable."""

    def __init__(self, values, **kw):
        super().__init__(**kw)
        self.values = values

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.tensor(self.values[self.current_epoch]))
        self.log("val_acc", torch.tensor(1.0 - self.values[self.current_epoch]))


def fit_with(cbs, values=(0.5, 0.4, 0.6, 0.3, 0.7), epochs=5, **kw):
    model = Scripted(list(values))
    kw.setdefault("enable_checkpointing", True)
    t = L.Trainer(**quiet(max_epochs=epochs, callbacks=cbs, **kw))
    t.fit(model, loader(n=16), loader(n=8))
    return model, t


def test_top_k_with_monitor_and_template(tmp_path):
    cb = ModelCheckpoint(
        dirpath=tmp_path,
        monitor="val_loss",
        save_top_k=2,
        save_last=True,
        filename="best-{epoch:02d}-{val_acc:.2f}",
    )
    fit_with([cb])
    assert sorted(os.listdir(tmp_path)) == [
        "best-epoch=01-val_acc=0.60.ckpt",
        "best-epoch=03-val_acc=0.70.ckpt",
        "last.ckpt",
    ]
    assert cb.best_model_path.endswith("best-epoch=03-val_acc=0.70.ckpt")
    assert cb.best_model_score.item() == pytest.approx(0.3)
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 4


def test_mode_max_and_save_top_k_minus_one(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_acc", mode="max", save_top_k=-1)
    fit_with([cb])
    assert len(os.listdir(tmp_path)) == 5
    assert cb.best_model_path.endswith("epoch=3-step=8.ckpt")


def test_default_keeps_only_the_newest(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path)
    fit_with([cb], epochs=3)
    assert os.listdir(tmp_path) == ["epoch=2-step=6.ckpt"]


def test_every_n_train_steps_and_every_n_epochs(tmp_path):
    a = ModelCheckpoint(dirpath=tmp_path / "a", every_n_train_steps=3, save_top_k=-1)
    b = ModelCheckpoint(dirpath=tmp_path / "b", every_n_epochs=2, save_top_k=-1)
    fit_with([a, b], epochs=4)
    assert sorted(os.listdir(tmp_path / "a")) == ["epoch=1-step=3.ckpt", "epoch=2-step=6.ckpt"]
    assert sorted(os.listdir(tmp_path / "b")) == ["epoch=1-step=4.ckpt", "epoch=3-step=8.ckpt"]


def test_version_suffix_when_file_exists(tmp_path):
    (tmp_path / "epoch=0-step=2.ckpt").write_bytes(b"old")
    cb = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1)
    fit_with([cb], epochs=1)
    assert sorted(os.listdir(tmp_path)) == ["epoch=0-step=2-v1.ckpt", "epoch=0-step=2.ckpt"]


def test_dirpath_follows_logger_version(tmp_path):
    cb = ModelCheckpoint()
    fit_with([cb], epochs=1, logger=CSVLogger(tmp_path, name="exp", version=3))
    assert cb.dirpath == os.path.realpath(tmp_path / "exp" / "version_3" / "checkpoints")


def test_missing_monitor_key_lists_logged_keys(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_los")
    with pytest.raises(MisconfigurationException, match=r"val_los.*'val_acc', 'val_loss'"):
        fit_with([cb], epochs=1)


def test_bad_checkpoint_arguments():
    with pytest.raises(MisconfigurationException, match="No quantity for top_k to track"):
        ModelCheckpoint(save_top_k=3)
    with pytest.raises(MisconfigurationException, match="`mode` can be min, max but got best"):
        ModelCheckpoint(mode="best")


def test_best_and_last_ckpt_path(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_last=True)
    model, t = fit_with([cb], values=(0.5, 0.4, 0.6, 0.3, 0.7, 0.9))
    t.validate(model, loader(n=8), ckpt_path="best", verbose=False)
    assert t.ckpt_path == cb.best_model_path
    best = torch.load(cb.best_model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    t.validate(model, loader(n=8), ckpt_path="last", verbose=False)
    assert t.ckpt_path == cb.last_model_path
    last = torch.load(cb.last_model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(last[k], v) for k, v in model.state_dict().items())
    assert not all(torch.equal(best[k], last[k]) for k in best)


@pytest.mark.parametrize(
    "kw,stopped_at",
    [
        ({"patience": 1}, 3),
        ({"patience": 3}, 5),
        ({"patience": 5, "stopping_threshold": 0.35}, 4),
        ({"patience": 5, "divergence_threshold": 0.55}, 3),
        ({"patience": 1, "min_delta": 0.15}, 2),
    ],
)
def test_early_stopping(kw, stopped_at):
    es = EarlyStopping("val_loss", **kw)
    _, t = fit_with([es], epochs=5, enable_checkpointing=False)
    assert t.current_epoch == stopped_at


def test_early_stopping_check_finite_and_mode_max():
    es = EarlyStopping("val_loss")
    _, t = fit_with([es], values=(0.5, float("nan"), 0.1, 0.1, 0.1), enable_checkpointing=False)
    assert t.current_epoch == 2
    # Lightning's enum and values (a checkpoint stores the value: 4 is NON_FINITE_METRIC there)
    assert es.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC
    assert es.state_dict()["stopping_reason"] == 4
    es = EarlyStopping("val_acc", mode="max", patience=1)
    _, t = fit_with([es], enable_checkpointing=False)
    assert t.current_epoch == 3


def test_early_stopping_unknown_key():
    with pytest.raises(MisconfigurationException, match="val_acc, val_loss"):
        fit_with([EarlyStopping("accuracy")], enable_checkpointing=False)


def test_learning_rate_monitor(tmp_path):
    class M(Scripted):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=1.0)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]

    model = M([0.1] * 3)
    lr = LearningRateMonitor(logging_interval="epoch")
    t = L.Trainer(**quiet(max_epochs=3, callbacks=[lr], logger=CSVLogger(tmp_path)))
    t.fit(model, loader(n=16), loader(n=8))
    assert lr.lrs == {"lr-SGD": [1.0, 0.5, 0.25]}
    with pytest.raises(MisconfigurationException, match="logger=False"):
        L.Trainer(**quiet(max_epochs=1, callbacks=[LearningRateMonitor()])).fit(M([0.1]), loader())


def test_progress_bar_writes_one_line_per_epoch_when_not_a_tty(tmp_path):
    script = textwrap.dedent("""
        import runtime as L
        from tests.helpers.models import RegModel, loader
        t = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False,
                      enable_model_summary=False)
        t.fit(RegModel(), loader(n=800, batch_size=8), loader(n=16))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 3 and "\r" not in out.stdout
    assert "100/100" in lines[0] and "val_loss=" in lines[0] and "train_loss_epoch=" in lines[0]


def test_model_summary_counts_parameters(capsys):
    L.Trainer(**quiet(max_epochs=1, enable_model_summary=True)).fit(RegModel(), loader(n=8))
    captured = capsys.readouterr()
    # on stderr, as Lightning logs it: the script's stdout stays its own
    out = captured.err
    assert "net  | Sequential | 161" in out and "161       Trainable params" in out
    assert "Trainable params" not in captured.out


def test_configure_callbacks_replaces_same_type():
    class M(RegModel):
        def configure_callbacks(self):
            return [EarlyStopping("val_loss", patience=7)]

    t = L.Trainer(**quiet(max_epochs=1, callbacks=[EarlyStopping("val_loss", patience=1)]))
    t.fit(M(), loader(), loader(n=8))
    assert [c.patience for c in t.early_stopping_callbacks] == [7]


def test_callback_state_is_checkpointed(tmp_path):
    es = EarlyStopping("val_loss", patience=10)
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss")
    fit_with([es, cb], epochs=3)
    ckpt = torch.load(cb.best_model_path, weights_only=True)
    state = ckpt["callbacks"]["EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"]
    # the best checkpoint (epoch 1) was written after EarlyStopping saw its new best
    assert state["wait_count"] == 0 and state["best_score"].item() == pytest.approx(0.4)


@pytest.mark.parametrize("engine", engines())
def test_checkpoint_names_with_version_prefix_and_dotted_metrics(engine, tmp_path):
    mod = engine_module(engine, "callbacks")
    mc = mod.ModelCheckpoint(dirpath=tmp_path, filename="name")
    assert mc.format_checkpoint_name({}, ver=3) == str(tmp_path / "name-v3.ckpt")
    assert mc.format_checkpoint_name({}, prefix="test") == str(tmp_path / "test-name.ckpt")
    name = mc._format_checkpoint_name(
        "mAP@0.50={val/mAP@0.50:.4f}", {"val/mAP@0.50": 0.2}, auto_insert_metric_name=False
    )
    assert name == "mAP@0.50=0.2000"


@pytest.mark.parametrize("engine", engines())
def test_a_second_run_never_overwrites_the_first_runs_last_checkpoint(engine, tmp_path):
    Lm = importlib.import_module(engine)
    mod = engine_module(engine, "callbacks")
    model = RegModel() if engine == "runtime" else None
    if model is None:

        class M(Lm.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(8, 1)

            def training_step(self, batch, batch_idx):
                return self.layer(batch[0]).sum()

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        model = M()
    for _ in range(2):
        mc = mod.ModelCheckpoint(dirpath=tmp_path, save_top_k=0, save_last=True)
        trainer = Lm.Trainer(
            max_epochs=2,
            callbacks=mc,
            limit_train_batches=1,
            limit_val_batches=0,
            enable_progress_bar=False,
            enable_model_summary=False,
            logger=False,
        )
        trainer.fit(model, loader())
    assert sorted(os.listdir(tmp_path)) == ["last-v1.ckpt", "last.ckpt"]


def test_stateful_callbacks_sharing_a_state_key_are_refused():
    """Two callbacks that keep a state under one state_key would overwrite each other's entry
    in a checkpoint: the Trainer refuses them (Lightning's error); stateless ones, or stateful
    ones with distinct keys (two ModelCheckpoints monitoring different metrics), are fine."""

    class Same(L.Callback):
        @property
        def state_key(self):
            return "same_key"

        def state_dict(self):
            return {"state": 1}

    with pytest.raises(RuntimeError, match="more than one stateful callback of type `Same`"):
        L.Trainer(callbacks=[Same(), Same()], logger=False)
    L.Trainer(callbacks=[L.Callback(), L.Callback()], logger=False)
    L.Trainer(
        callbacks=[
            ModelCheckpoint(monitor="a"),
            ModelCheckpoint(monitor="b"),
            EarlyStopping("a"),
            EarlyStopping("b"),
        ],
        logger=False,
    )
    with pytest.raises(RuntimeError, match="of type `EarlyStopping`"):
        L.Trainer(callbacks=[EarlyStopping("a"), EarlyStopping("a")], logger=False)
