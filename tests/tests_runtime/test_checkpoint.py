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


def test_loop_state_of_a_resumed_run_equals_the_uninterrupted_runs(tmp_path):
    """The `loops` entry holds only loop progress (as Lightning's): a resumed run writes the
    same entry as an uninterrupted one even when the two runs' random states differ (the
    exact-resume random state has a top-level key of its own). A checkpoint written with that
    state inside the fit loop's state_dict (the earlier layout) still resumes exactly."""
    from runtime.checkpoint import RNG_KEY

    _, _, _ = _fit(tmp_path / "a", epochs=4)
    straight = torch.load(tmp_path / "a" / "ckpt" / "epoch=3-step=24.ckpt", weights_only=True)
    _, _, cb = _fit(tmp_path / "b", epochs=2)
    torch.rand(5)  # the resumed run starts from another random state than run "a" did
    _fit(tmp_path / "c", epochs=4, ckpt_path=os.path.join(cb.dirpath, "epoch=1-step=12.ckpt"))
    resumed = torch.load(tmp_path / "c" / "ckpt" / "epoch=3-step=24.ckpt", weights_only=True)
    assert RNG_KEY in straight and RNG_KEY not in straight["loops"]["fit_loop"]["state_dict"]
    assert straight["loops"] == resumed["loops"]

    # the earlier layout: the random state inside loops.fit_loop.state_dict
    old = torch.load(os.path.join(cb.dirpath, "epoch=1-step=12.ckpt"), weights_only=True)
    old["loops"]["fit_loop"]["state_dict"][RNG_KEY] = old.pop(RNG_KEY)
    torch.save(old, tmp_path / "old.ckpt")
    from_old, _, _ = _fit(tmp_path / "d", epochs=4, ckpt_path=tmp_path / "old.ckpt")
    from_new, _, _ = _fit(
        tmp_path / "e", epochs=4, ckpt_path=os.path.join(cb.dirpath, "epoch=1-step=12.ckpt")
    )
    for a, b in zip(params_of(from_old), params_of(from_new)):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("every", "start_from", "compare"),
    [
        # saved in on_train_batch_end mid-epoch, before the validation due after that batch
        (dict(every_n_train_steps=2), "epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt"),
        # saved at the end of validation on an epoch's last batch (before its step is counted)
        (dict(every_n_epochs=1, save_last=True), "last.ckpt", "last.ckpt"),
    ],
)
def test_resumed_loop_state_matches_around_validation(tmp_path, every, start_from, compare):
    """Checkpoints saved around an in-epoch validation resume to the uninterrupted run's loop
    state: the step count of the batch whose save came before it was counted, and the batch
    counters of a validation that was due but had not run at the save (as Lightning, it does
    not run on resume; its counters move to its end)."""

    def run(root, epochs, ckpt_path=None):
        torch.manual_seed(0)
        cb = ModelCheckpoint(dirpath=tmp_path / root, save_top_k=-1, **every)
        trainer = L.Trainer(
            **quiet(
                max_epochs=epochs,
                limit_train_batches=4,
                limit_val_batches=3,
                val_check_interval=2,
                enable_checkpointing=True,
                callbacks=[cb],
            )
        )
        model = RegModel()
        trainer.fit(model, loader(n=32), loader(n=32), ckpt_path=ckpt_path)
        return model, trainer

    straight_model, straight = run("a", 3)
    run("b", 1 if start_from == "last.ckpt" else 3)
    resumed_model, resumed = run("c", 3, ckpt_path=tmp_path / "b" / start_from)
    a = torch.load(tmp_path / "a" / compare, weights_only=True)
    c = torch.load(tmp_path / "c" / compare, weights_only=True)
    assert a["loops"] == c["loops"]
    assert resumed._batches_that_stepped == straight._batches_that_stepped == 12
    for x, y in zip(params_of(straight_model), params_of(resumed_model)):
        assert torch.equal(x, y)


@pytest.mark.parametrize("val_check_interval", [0.5, 1.0])
def test_resume_from_an_exception_in_validation_finishes_that_validation(
    tmp_path, val_check_interval
):
    """A run that failed in a validation inside fit (OnExceptionCheckpoint) resumes by
    running that validation on from the batch that failed (not the ones done before it, not
    the sanity check), then what follows the batch it came after (its step-interval scheduler
    step and step count), then training: the same parameters, learning rate and loop counters
    as a run that never failed."""
    from runtime.callbacks import OnExceptionCheckpoint

    class Boom(Exception):
        pass

    class M(RegModel):
        def __init__(self, fail_at=None):
            super().__init__(dropout=0.2, scheduler="batch")
            self.fail_at, self.seen = fail_at, []
            M.last = self

        def validation_step(self, batch, batch_idx):
            if (self.current_epoch, batch_idx) == self.fail_at and not self.trainer.sanity_checking:
                self.fail_at = None
                raise Boom
            self.seen.append(
                "sanity" if self.trainer.sanity_checking else (self.current_epoch, batch_idx)
            )
            return super().validation_step(batch, batch_idx)

    def run(fail_at=None, ckpt_path=None, **kw):
        torch.manual_seed(0)
        model = M(fail_at)
        trainer = L.Trainer(
            **quiet(
                max_epochs=2,
                limit_val_batches=3,
                val_check_interval=val_check_interval,
                num_sanity_val_steps=2,
                **kw,
            )
        )
        trainer.fit(model, loader(n=32, shuffle=True, seed=3), loader(n=32), ckpt_path=ckpt_path)
        return trainer

    straight = run()
    expected = straight.fit_loop.state_dict()
    with pytest.raises(Boom):
        run((0, 1), callbacks=[OnExceptionCheckpoint(tmp_path)], enable_checkpointing=True)
    failing = M.last
    resumed = run(ckpt_path=tmp_path / "on_exception.ckpt")
    resumed_model = resumed.lightning_module
    # the failed validation goes on at batch 1; no sanity check
    assert resumed_model.seen[:2] == [(0, 1), (0, 2)] and failing.seen[:3] == ["sanity"] * 2 + [
        (0, 0)
    ]
    assert "sanity" not in resumed_model.seen and "sanity" in failing.seen
    state = resumed.fit_loop.state_dict()
    assert state == expected  # (the validation counters start over with epoch 1)
    assert resumed.global_step == straight.global_step
    assert resumed._batches_that_stepped == straight._batches_that_stepped
    assert (
        resumed.optimizers[0].param_groups[0]["lr"] == straight.optimizers[0].param_groups[0]["lr"]
    )
    for a, b in zip(params_of(straight.lightning_module), params_of(resumed_model)):
        assert torch.equal(a, b)


class _PositionLoader:
    """A loader that keeps its own state (as torchdata's StatefulDataLoader does): the epoch's
    shuffled order and how many batches it handed out. ``drawn`` counts the batches made."""

    def __init__(self, n=48, batch_size=8, seed=7):
        from tests.helpers.models import regression_data

        self.data, self.batch_size = regression_data(n), batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.order, self.pos, self.drawn = None, 0, 0

    def __len__(self):
        return len(self.data) // self.batch_size

    def __iter__(self):
        if self.order is None or self.pos >= len(self):
            self.order, self.pos = torch.randperm(len(self.data), generator=self.gen), 0
        while self.pos < len(self):
            idx = self.order[self.pos * self.batch_size : (self.pos + 1) * self.batch_size]
            self.pos += 1
            self.drawn += 1
            yield self.data[idx]

    def state_dict(self):
        return {"order": self.order, "pos": self.pos, "gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.order, self.pos = state["order"], state["pos"]
        self.gen.set_state(state["gen"])


@pytest.mark.parametrize("combined", [False, True])
def test_stateful_train_loaders_are_saved_and_resume_where_they_were(tmp_path, combined):
    """Train loaders with a state of their own (state_dict/load_state_dict) have it saved in
    the checkpoint (Lightning's `loops.fit_loop.state_dict.combined_loader`, in order) and
    loaded on resume: a run resumed mid-epoch goes on from them without drawing the batches
    done before the save, to the parameters of the uninterrupted run."""
    from runtime.combined_loader import CombinedLoader

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            return super().training_step(
                batch["a"] if isinstance(batch, dict) else batch, batch_idx
            )

    def data():
        if combined:  # two of them, one batch per step from each
            return CombinedLoader({"a": _PositionLoader(), "b": _PositionLoader(seed=8)})
        return _PositionLoader()

    def run(ckpt_path=None, **kw):
        torch.manual_seed(0)
        model, train = M(dropout=0.2), data()
        trainer = L.Trainer(**quiet(max_epochs=2, enable_checkpointing=True, **kw))
        trainer.fit(model, train, ckpt_path=ckpt_path)
        return model, train

    straight, _ = run(default_root_dir=tmp_path / "a")
    cb = ModelCheckpoint(dirpath=tmp_path / "mid", every_n_train_steps=4, save_top_k=-1)
    run(callbacks=[cb], max_steps=4)
    ckpt = torch.load(tmp_path / "mid" / "epoch=0-step=4.ckpt", weights_only=False)
    states = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert len(states) == (2 if combined else 1) and states[0]["pos"] == 4
    resumed, train = run(ckpt_path=tmp_path / "mid" / "epoch=0-step=4.ckpt")
    stateful = train.flattened[0] if combined else train
    assert stateful.drawn == 2 + 6  # the rest of epoch 0, then epoch 1: none drawn to skip
    for a, b in zip(params_of(straight), params_of(resumed)):
        assert torch.equal(a, b)


_FRESH_PROCESS = """
import sys, torch
import runtime as L
from tests.helpers.models import RegModel, loader, quiet

mode, path = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = RegModel(dropout=0.2)
data = loader(n=48, batch_size=8, shuffle=True, seed=5)
if mode == "straight":
    L.Trainer(**quiet(max_epochs=4)).fit(model, data)
    torch.save(model.state_dict(), path)
elif mode == "first":
    trainer = L.Trainer(**quiet(max_epochs=2))
    trainer.fit(model, data)
    trainer.save_checkpoint(path)
else:
    torch.manual_seed(123)  # a new process, in another random state than the first one's
    trainer = L.Trainer(**quiet(max_epochs=4))
    trainer.fit(model, data, ckpt_path=path)
    torch.save(model.state_dict(), sys.argv[3])
"""


@pytest.mark.slow
def test_checkpoint_saved_after_fit_resumes_exactly_in_a_fresh_process(tmp_path):
    """`trainer.save_checkpoint(path)` after `fit` returned, then `fit(ckpt_path=path)` with
    more epochs in another process (another random state): the uninterrupted run's weights
    (issue 11 found a 0.03 difference)."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(_FRESH_PROCESS)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}

    def job(*args):
        proc = subprocess.run(
            [sys.executable, str(script), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]

    job("straight", tmp_path / "straight.pt")
    job("first", tmp_path / "after_fit.ckpt")
    job("resume", tmp_path / "after_fit.ckpt", tmp_path / "resumed.pt")
    straight = torch.load(tmp_path / "straight.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k


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
    with pytest.raises(
        FileNotFoundError, match="Checkpoint file not found: .*Pass the path of a `.ckpt` file"
    ):
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


def test_stateful_loader_resumed_after_its_epochs_last_batch_starts_no_extra_pass(tmp_path):
    """A run failing in the validation after an epoch's last batch, with a train loader that
    keeps its own state: the resumed run finishes that validation and goes on with the next
    epoch; the loader (at its end) is not iterated again inside the finished epoch."""
    from runtime.callbacks import OnExceptionCheckpoint

    class Boom(Exception):
        pass

    class M(RegModel):
        fail = False

        def validation_step(self, batch, batch_idx):
            if self.fail and not self.trainer.sanity_checking:
                type(self).fail = False
                raise Boom
            return super().validation_step(batch, batch_idx)

    def run(fail=False, ckpt_path=None, **kw):
        torch.manual_seed(0)
        M.fail = fail
        model, train = M(dropout=0.2), _PositionLoader()
        trainer = L.Trainer(**quiet(max_epochs=2, limit_val_batches=2, **kw))
        trainer.fit(model, train, loader(n=16), ckpt_path=ckpt_path)
        return model, train, trainer

    straight, _, t_straight = run()
    with pytest.raises(Boom):
        run(True, callbacks=[OnExceptionCheckpoint(tmp_path)], enable_checkpointing=True)
    resumed, train, t_resumed = run(ckpt_path=tmp_path / "on_exception.ckpt")
    assert train.drawn == 6  # epoch 1 only
    assert t_resumed.global_step == t_straight.global_step == 12
    for a, b in zip(params_of(straight), params_of(resumed)):
        assert torch.equal(a, b)
