"""Checkpoint format, atomic writes, exact resume, and loading across engines."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

import runtime as L
from runtime.callbacks import ModelCheckpoint
from runtime.errors import CheckpointError
from tests.helpers.models import RegModel, loader, params_of, quiet

LIGHTNING_KEYS = {
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "loops",
    "callbacks",
    "optimizer_states",
    "lr_schedulers",
    "hparams_name",
    "hyper_parameters",
}


def _fit(tmp_path, epochs=2, ckpt_path=None, **kw):
    torch.manual_seed(0)
    model = RegModel(dropout=0.2, scheduler="step", optimizer="adam")
    cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    from runtime.loggers import CSVLogger

    trainer = L.Trainer(
        **quiet(
            max_epochs=epochs,
            enable_checkpointing=True,
            callbacks=[cb],
            logger=CSVLogger(tmp_path / "logs"),
            log_every_n_steps=1,
            **kw,
        )
    )
    trainer.fit(model, loader(n=48, shuffle=True, seed=7), loader(n=16), ckpt_path=ckpt_path)
    return model, trainer, cb


def test_keys_match_lightning_and_load_with_weights_only(tmp_path):
    _, trainer, cb = _fit(tmp_path)
    path = cb.best_model_path
    assert os.path.basename(path) == "epoch=1-step=12.ckpt"
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) >= LIGHTNING_KEYS
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 12
    assert ckpt["hyper_parameters"]["optimizer"] == "adam"
    assert (
        "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None}" in ckpt["callbacks"]
    )
    fit_loop = ckpt["loops"]["fit_loop"]
    assert fit_loop["epoch_loop.state_dict"]["_batches_that_stepped"] == 12
    assert (
        fit_loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]["total"][
            "completed"
        ]
        == 12
    )
    assert not any(f.startswith(".tmp") for f in os.listdir(cb.dirpath))


def test_resume_is_exact(tmp_path):
    """4 epochs straight == 2 epochs, then resume from the checkpoint for 2 more."""
    straight, t_straight, _ = _fit(tmp_path / "a", epochs=4)
    _, _, cb = _fit(tmp_path / "b", epochs=2)
    ckpt = os.path.join(cb.dirpath, "epoch=1-step=12.ckpt")
    resumed, t_resumed, _ = _fit(tmp_path / "c", epochs=4, ckpt_path=ckpt)
    assert t_resumed.global_step == t_straight.global_step == 24
    for a, b in zip(params_of(straight), params_of(resumed)):
        assert torch.equal(a, b)
    s_opt, r_opt = t_straight.optimizers[0].state_dict(), t_resumed.optimizers[0].state_dict()
    for k in s_opt["state"]:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(s_opt["state"][k][name], r_opt["state"][k][name])
    assert (
        t_straight.lr_scheduler_configs[0].scheduler.get_last_lr()
        == t_resumed.lr_scheduler_configs[0].scheduler.get_last_lr()
    )

    def rows(root):
        import csv

        path = os.path.join(root, "logs", "lightning_logs", "version_0", "metrics.csv")
        with open(path) as f:
            return [r for r in csv.DictReader(f) if r.get("train_loss_step")]

    assert [r["train_loss_step"] for r in rows(tmp_path / "a")][12:] == [
        r["train_loss_step"] for r in rows(tmp_path / "c")
    ]


def test_mid_epoch_resume_is_exact(tmp_path):
    torch.manual_seed(0)
    straight, t1, _ = _fit(tmp_path / "a", epochs=2)

    torch.manual_seed(0)
    model = RegModel(dropout=0.2, scheduler="step", optimizer="adam")
    cb = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=4, save_top_k=-1)
    trainer = L.Trainer(**quiet(max_steps=8, enable_checkpointing=True, callbacks=[cb]))
    trainer.fit(model, loader(n=48, shuffle=True, seed=7), loader(n=16))
    mid = os.path.join(cb.dirpath, "epoch=1-step=8.ckpt")
    assert os.path.exists(mid)
    resumed, t2, _ = _fit(tmp_path / "c", epochs=2, ckpt_path=mid)
    assert t2.global_step == t1.global_step
    for a, b in zip(params_of(straight), params_of(resumed)):
        assert torch.equal(a, b)


def test_unknown_file_gives_a_clear_error(tmp_path):
    bare = tmp_path / "weights.pt"
    torch.save(RegModel().state_dict(), bare)
    with pytest.raises(CheckpointError, match="no 'state_dict' key"):
        RegModel.load_from_checkpoint(bare)
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="Could not read checkpoint"):
        L.Trainer(**quiet(max_epochs=1)).fit(RegModel(), loader(), ckpt_path=junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RegModel.load_from_checkpoint(tmp_path / "missing.ckpt")


def test_load_from_checkpoint_rebuilds_with_overrides(tmp_path):
    model, _, cb = _fit(tmp_path, epochs=1)
    loaded = RegModel.load_from_checkpoint(cb.best_model_path, lr=0.5)
    assert loaded.hparams.lr == 0.5 and loaded.hparams.optimizer == "adam"
    for a, b in zip(params_of(model), params_of(loaded)):
        assert torch.equal(a, b)
    assert loaded.training
    with pytest.raises(TypeError, match="cannot be called on an instance"):
        model.load_from_checkpoint(cb.best_model_path)


def test_crash_mid_epoch_keeps_last_complete_checkpoint(tmp_path):
    class Crashing(RegModel):
        def training_step(self, batch, batch_idx):
            if self.current_epoch == 1 and batch_idx == 2:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    model = Crashing()
    cb = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(**quiet(max_epochs=3, enable_checkpointing=True, callbacks=[cb]))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(model, loader())
    files = sorted(os.listdir(tmp_path))
    assert files == ["epoch=0-step=8.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 8


def test_weights_only_checkpoint(tmp_path):
    model = RegModel()
    trainer = L.Trainer(**quiet(max_epochs=1))
    trainer.fit(model, loader())
    trainer.save_checkpoint(tmp_path / "w.ckpt", weights_only=True)
    ckpt = torch.load(tmp_path / "w.ckpt", weights_only=True)
    assert "optimizer_states" not in ckpt and "state_dict" in ckpt and "loops" in ckpt


lightning = pytest.importorskip("lightning", reason="cross-engine tests need `lightning`")


def _lightning_model_cls():
    import lightning as PL

    class LitReg(PL.LightningModule):
        def __init__(self, lr=0.05, dropout=0.0, optimizer="sgd", scheduler=None, d=8):
            super().__init__()
            self.save_hyperparameters()
            from tests.helpers.models import make_net

            self.net = make_net(d, dropout)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]

    return PL, LitReg


def test_runtime_checkpoint_loads_and_resumes_in_lightning(tmp_path):
    PL, LitReg = _lightning_model_cls()
    model, _, cb = _fit(tmp_path, epochs=2)
    loaded = LitReg.load_from_checkpoint(cb.best_model_path)
    for a, b in zip(params_of(model), params_of(loaded)):
        assert torch.equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = PL.Trainer(
            max_epochs=3,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(
            LitReg(optimizer="adam", scheduler="step"), loader(n=48), ckpt_path=cb.best_model_path
        )
    assert trainer.current_epoch == 3 and trainer.global_step == 18


def test_lightning_checkpoint_loads_and_resumes_in_runtime(tmp_path):
    PL, LitReg = _lightning_model_cls()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lit = LitReg(optimizer="adam")
        trainer = PL.Trainer(
            max_epochs=2,
            logger=False,
            default_root_dir=tmp_path,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(lit, loader(n=48))
    path = trainer.checkpoint_callback.best_model_path
    loaded = RegModel.load_from_checkpoint(path)
    for a, b in zip(params_of(lit), params_of(loaded)):
        assert torch.equal(a, b)
    model = RegModel(optimizer="adam", scheduler="step")
    rt = L.Trainer(**quiet(max_epochs=3))
    rt.fit(model, loader(n=48), ckpt_path=path)
    assert rt.current_epoch == 3 and rt.global_step == 18


def test_atomic_save_is_durable_follows_the_umask_and_hides_partial_files(tmp_path, monkeypatch):
    """The saved file gets the umask's mode (not mkstemp's 0600), the folder is fsynced after
    the rename, and a save killed midway leaves nothing a `*.ckpt` search would find."""
    import os
    import stat

    import torch

    from runtime import checkpoint

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    old = os.umask(0o022)
    try:
        checkpoint.atomic_save({"state_dict": {}}, tmp_path / "a.ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.ckpt").stat().st_mode) == 0o644
    assert len(synced) == 2  # the file, then its folder

    def killed(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", killed)
    try:
        checkpoint.atomic_save({"state_dict": {}}, tmp_path / "b.ckpt")
    except KeyboardInterrupt:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ckpt"]
    assert torch.load(tmp_path / "a.ckpt", weights_only=True) == {"state_dict": {}}


def test_ckpt_path_last_only_considers_last_checkpoints(tmp_path):
    """A fresh process resuming with ckpt_path="last" takes the newest `last*.ckpt`, never a newer
    per-epoch, exception or half-written file beside it."""
    import os
    import time
    from types import SimpleNamespace

    from runtime.loops import resolve_ckpt_path

    (tmp_path / "last.ckpt").write_bytes(b"x")
    time.sleep(0.01)
    for name in ("epoch=3-step=40.ckpt", "exception-epoch=4.ckpt", ".last.ckpt.abc.tmp"):
        (tmp_path / name).write_bytes(b"x")
    stamp = time.time() + 5
    for name in ("epoch=3-step=40.ckpt", "exception-epoch=4.ckpt"):
        os.utime(tmp_path / name, (stamp, stamp))
    from runtime.callbacks import ModelCheckpoint

    cb = ModelCheckpoint(dirpath=tmp_path)
    trainer = SimpleNamespace(checkpoint_callback=cb, checkpoint_callbacks=[cb], callbacks=[cb])
    assert resolve_ckpt_path(trainer, "last", "fit") == str(tmp_path / "last.ckpt")
