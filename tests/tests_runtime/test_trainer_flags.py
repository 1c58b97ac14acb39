"""Each Trainer flag that changes behaviour, with Lightning's defaults, and bad values."""

from __future__ import annotations

import os

import pytest
import torch

import runtime as L
from runtime.errors import MisconfigurationException
from tests.helpers.models import RegModel, loader, quiet


class Counting(RegModel):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.train_batches: list[tuple[int, int]] = []
        self.val_runs: list[int] = []
        self.val_batches = 0

    def training_step(self, batch, batch_idx):
        self.train_batches.append((self.current_epoch, batch_idx))
        return super().training_step(batch, batch_idx)

    def on_validation_start(self):
        self.val_runs.append(self.global_step)

    def validation_step(self, batch, batch_idx):
        self.val_batches += 1
        return super().validation_step(batch, batch_idx)


def fit(model=None, train=None, val="default", **flags):
    model = model or Counting()
    trainer = L.Trainer(**quiet(**flags))
    trainer.fit(
        model,
        train or loader(n=64, batch_size=8),
        loader(n=32, batch_size=8) if val == "default" else val,
    )
    return model, trainer


def test_defaults_follow_lightning():
    t = L.Trainer()
    # as Lightning 2.6: the value passed is kept; fit resolves None to 1000 epochs (warning)
    assert t.max_epochs is None and t.max_steps == -1 and t.num_sanity_val_steps == 2
    assert t.log_every_n_steps == 50 and t.precision == "32-true"
    assert t.accumulate_grad_batches == 1 and t.check_val_every_n_epoch == 1
    assert t.limit_train_batches == 1.0 and t.val_check_interval == 1.0
    names = [type(c).__name__ for c in t.callbacks]
    assert names == ["TQDMProgressBar", "ModelSummary", "ModelCheckpoint"]
    assert type(t.logger).__name__ in ("TensorBoardLogger", "CSVLogger")
    assert t.default_root_dir == os.getcwd()
    quick = L.Trainer(**quiet(max_steps=1))
    quick.fit(RegModel(), loader(n=16))
    assert quick.max_epochs == -1  # bounded by max_steps: no epoch limit, no warning
    unbounded = L.Trainer(**quiet(limit_train_batches=1))
    unbounded.fit_loop.max_epochs = None
    unbounded.should_stop = False
    with pytest.warns(UserWarning, match="max_epochs` was not set"):
        unbounded.fit(_StopAfterOne(), loader(n=16))
    assert unbounded.max_epochs == 1000 and unbounded.current_epoch == 1


class _StopAfterOne(RegModel):
    def on_train_epoch_end(self):
        self.trainer.should_stop = True


@pytest.mark.parametrize(
    "flags,epochs,steps",
    [
        ({"max_epochs": 2}, 2, 16),
        ({"max_steps": 5, "max_epochs": -1}, 1, 5),
        ({"max_epochs": 3, "max_steps": 10}, 2, 10),
    ],
)
def test_stopping_limits(flags, epochs, steps):
    model, t = fit(**flags)
    assert t.global_step == steps
    assert len({e for e, _ in model.train_batches}) == epochs


def test_min_epochs_overrides_early_stop():
    class Stopper(Counting):
        def on_train_epoch_end(self):
            self.trainer.should_stop = True

    model, t = fit(Stopper(), max_epochs=5, min_epochs=3)
    assert t.current_epoch == 3


@pytest.mark.parametrize("limit,expected", [(3, 3), (0.25, 2), (1.0, 8), (0, 0)])
def test_limit_train_batches(limit, expected):
    model, t = fit(max_epochs=1, limit_train_batches=limit)
    assert len(model.train_batches) == expected


@pytest.mark.parametrize("limit,expected", [(2, 2), (0.5, 2), (0, 0)])
def test_limit_val_batches(limit, expected):
    model, t = fit(max_epochs=1, limit_val_batches=limit)
    assert model.val_batches == expected


def test_val_check_interval_and_every_n_epoch():
    model, _ = fit(max_epochs=2, val_check_interval=0.5)
    assert model.val_runs == [4, 8, 12, 16]
    model, _ = fit(max_epochs=2, val_check_interval=3)
    assert model.val_runs == [3, 6, 11, 14]
    model, _ = fit(max_epochs=4, check_val_every_n_epoch=2)
    assert model.val_runs == [16, 32]
    model, _ = fit(max_epochs=2, val_check_interval=5, check_val_every_n_epoch=None)
    assert model.val_runs == [5, 10, 15]
    with pytest.raises(ValueError, match="must be less than or equal"):
        fit(max_epochs=1, val_check_interval=100)


def test_num_sanity_val_steps():
    model = Counting()
    L.Trainer(**quiet(max_epochs=1, num_sanity_val_steps=2, limit_train_batches=0)).fit(
        model, loader(), loader(n=32)
    )
    assert model.val_batches == 2 and model.val_runs == [0]
    model = Counting()
    L.Trainer(**quiet(max_epochs=1, num_sanity_val_steps=-1, limit_train_batches=0)).fit(
        model, loader(), loader(n=32)
    )
    assert model.val_batches == 4


def test_fast_dev_run():
    model, t = fit(fast_dev_run=2, max_epochs=10, logger=True, enable_checkpointing=True)
    assert model.train_batches == [(0, 0), (0, 1)] and model.val_batches == 2
    assert type(t.logger).__name__ == "DummyLogger"
    assert t.checkpoint_callback.best_model_path == ""


def test_overfit_batches_uses_the_same_unshuffled_batches():
    seen = []

    class Rec(Counting):
        def training_step(self, batch, batch_idx):
            seen.append(batch[0][0, 0].item())
            return super().training_step(batch, batch_idx)

    fit(Rec(), train=loader(shuffle=True), max_epochs=2, overfit_batches=2)
    assert len(seen) == 4 and seen[:2] == seen[2:]


def test_log_every_n_steps_controls_logger_rows(tmp_path):
    from runtime.loggers import CSVLogger

    fit(max_epochs=1, log_every_n_steps=3, logger=CSVLogger(tmp_path), val=None)
    import csv

    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["train_loss_step"]]
    assert steps == [2, 5]


def test_default_root_dir_holds_logs_and_checkpoints(tmp_path):
    _, t = fit(max_epochs=1, default_root_dir=tmp_path, logger=True, enable_checkpointing=True)
    assert t.log_dir == str(tmp_path / "lightning_logs" / "version_0")
    assert os.path.exists(os.path.join(t.log_dir, "checkpoints", "epoch=0-step=8.ckpt"))
    _, t2 = fit(max_epochs=1, default_root_dir=tmp_path, logger=True)
    assert t2.log_dir.endswith("version_1")


def test_reload_dataloaders_every_n_epochs():
    calls = []

    class Reloading(Counting):
        def train_dataloader(self):
            calls.append(self.current_epoch)
            return loader()

    m = Reloading()
    L.Trainer(**quiet(max_epochs=4, reload_dataloaders_every_n_epochs=2)).fit(m)
    assert calls == [0, 2]


def test_inference_mode_flag():
    modes = []

    class M(RegModel):
        def test_step(self, batch, batch_idx):
            modes.append(torch.is_inference_mode_enabled())

    L.Trainer(**quiet()).test(M(), loader(n=8), verbose=False)
    L.Trainer(**quiet(inference_mode=False)).test(M(), loader(n=8), verbose=False)
    assert modes == [True, False]


def test_detect_anomaly_reports_the_nan_backward():
    class Bad(RegModel):
        def training_step(self, batch, batch_idx):
            return (self(batch[0]) * torch.tensor(float("nan"))).sqrt().sum()

    with pytest.raises(RuntimeError, match="returned nan"):
        fit(Bad(), max_epochs=1, detect_anomaly=True, val=None)


def test_barebones():
    t = L.Trainer(barebones=True, max_epochs=1)
    assert t.loggers == [] and t.callbacks == [] and t.num_sanity_val_steps == 0
    model = RegModel()
    t.fit(model, loader())
    assert t.global_step == 8 and t.callback_metrics == {}
    with pytest.raises(ValueError, match="barebones"):
        L.Trainer(barebones=True, enable_checkpointing=True)


@pytest.mark.parametrize(
    "flag", ["fast_dev_run=1", "detect_anomaly=True", "profiler='simple'", "logger=True"]
)
def test_barebones_refuses_what_it_turns_off(flag):
    name, value = flag.split("=")
    with pytest.raises(ValueError, match=rf"barebones=True, {name}={value}\)` was passed"):
        L.Trainer(barebones=True, **{name: eval(value)})


def test_barebones_warns_at_every_log_call():
    module = RegModel()
    module._trainer = L.Trainer(barebones=True)
    for call in (lambda: module.log("a", 1.0), lambda: module.log_dict({"a": 1.0})):
        with pytest.warns(UserWarning, match=r"barebones=True\)` is configured"):
            call()


def test_deterministic_flag():
    try:
        L.Trainer(**quiet(deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_gradient_clip_value():
    class Check(RegModel):
        def on_before_optimizer_step(self, optimizer):
            self.pre = max(p.grad.abs().max().item() for p in self.parameters())

        def optimizer_step(self, *args, **kwargs):
            super().optimizer_step(*args, **kwargs)

        def configure_gradient_clipping(
            self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
        ):
            super().configure_gradient_clipping(
                optimizer, gradient_clip_val, gradient_clip_algorithm
            )
            self.post = max(p.grad.abs().max().item() for p in self.parameters())

    m = Check(lr=1.0)
    fit(m, max_epochs=1, gradient_clip_val=1e-3, gradient_clip_algorithm="value", val=None)
    assert m.pre > 1e-3 and m.post <= 1e-3 + 1e-9


@pytest.mark.parametrize(
    "flags,match",
    [
        ({"gpus": 1}, "accelerator='gpu', devices=N"),
        ({"progress_bar_refresh_rate": 5}, "TQDMProgressBar"),
        ({"resume_from_checkpoint": "x.ckpt"}, "ckpt_path"),
        ({"max_epoch": 3}, "Did you mean 'max_epochs'"),
        ({"precision": "mixed"}, "Allowed precision values"),
        ({"accelerator": "dp"}, "invalid accelerator"),
        ({"accelerator": "tpu"}, "invalid accelerator"),
        ({"limit_train_batches": 1.5}, "float in"),
        ({"limit_val_batches": -1}, "invalid"),
        ({"accumulate_grad_batches": 0}, "accumulate_grad_batches"),
        ({"gradient_clip_algorithm": "l2"}, "gradient_clip_algorithm` l2 is invalid"),
        ({"devices": 0}, "devices"),
        ({"fast_dev_run": -1}, "fast_dev_run"),
        ({"max_time": "1 hour"}, "DD:HH:MM:SS"),
    ],
)
def test_bad_flags_fail_at_construction(flags, match):
    with pytest.raises((MisconfigurationException, TypeError, ValueError), match=match):
        L.Trainer(**flags)


def test_gpu_requested_without_cuda_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    with pytest.raises(MisconfigurationException, match="CUDA is not available|no supported GPU"):
        L.Trainer(accelerator="gpu")


def test_removed_hooks_name_their_replacement():
    class Old(RegModel):
        def training_epoch_end(self, outputs):
            pass

    with pytest.raises(NotImplementedError, match="on_train_epoch_end"):
        fit(Old(), max_epochs=1)

    class OldCb(L.Callback):
        def on_epoch_end(self, trainer, pl_module):
            pass

    with pytest.raises(NotImplementedError, match="on_train_epoch_end"):
        fit(max_epochs=1, callbacks=[OldCb()])


@pytest.mark.parametrize(
    "ret,match",
    [
        ("string", "must\\s+return the loss"),
        ({"acc": 1}, "'loss' key"),
    ],
)
def test_unusable_training_step_output(ret, match):
    class M(RegModel):
        def training_step(self, batch, batch_idx):
            return ret

    with pytest.raises(MisconfigurationException, match=match):
        fit(M(), max_epochs=1)


def test_training_step_returning_none_skips_backward():
    class M(RegModel):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            return None

    m = M()
    before = [p.clone() for p in m.parameters()]
    fit(m, max_epochs=1, val=None)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))


def test_keyboard_interrupt_ends_cleanly():
    seen = []

    class Interrupting(Counting):
        def training_step(self, batch, batch_idx):
            if batch_idx == 3:
                raise KeyboardInterrupt
            return super().training_step(batch, batch_idx)

    class Cb(L.Callback):
        def on_exception(self, trainer, pl_module, exception):
            seen.append(type(exception).__name__)

    model, t = fit(Interrupting(), max_epochs=2, callbacks=[Cb()])
    assert t.interrupted and seen == ["KeyboardInterrupt"] and t.state.status == "interrupted"


def test_precision_16_true_and_64_true_cast_module_and_inputs():
    dtypes = []

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            dtypes.append((batch[0].dtype, next(self.parameters()).dtype))
            return super().training_step(batch, batch_idx)

    fit(M(), max_epochs=1, precision="64-true", limit_train_batches=1, val=None)
    fit(M(), max_epochs=1, precision="bf16-true", limit_train_batches=1, val=None)
    assert dtypes == [(torch.float64, torch.float64), (torch.bfloat16, torch.bfloat16)]


@pytest.mark.parametrize(
    "value,expected",
    [
        (16, "bf16-mixed"),
        ("16", "bf16-mixed"),
        ("bf16", "bf16-mixed"),
        (32, "32-true"),
        (64, "64-true"),
        ("16-mixed", "bf16-mixed"),
        ("16-true", "16-true"),
    ],
)
def test_legacy_precision_spellings(value, expected):
    # on CPU, 16-mixed falls back to bf16-mixed with a warning, as in Lightning
    assert L.Trainer(**quiet(precision=value)).precision == expected


def test_min_steps_overrides_early_stop():
    class Stopper(Counting):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.trainer.should_stop = True

    _, t = fit(Stopper(), max_epochs=5, min_steps=12, val=None)
    assert t.global_step == 12  # the stop request is honoured as soon as min_steps is met


def test_benchmark_flag_sets_cudnn_benchmark():
    before = torch.backends.cudnn.benchmark
    try:
        L.Trainer(**quiet(benchmark=True))
        assert torch.backends.cudnn.benchmark is True
        L.Trainer(**quiet(benchmark=False))
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


def test_unsupported_flags_warn():
    with pytest.warns(UserWarning, match="plugins=.*no effect"):
        L.Trainer(**quiet(plugins=[object()]))


def test_a_fraction_of_an_epoch_needs_epoch_validation():
    with pytest.raises(MisconfigurationException, match="should be an integer or a time-based"):
        L.Trainer(val_check_interval=0.5, check_val_every_n_epoch=None)
    L.Trainer(val_check_interval=5, check_val_every_n_epoch=None)  # a number of batches is fine
