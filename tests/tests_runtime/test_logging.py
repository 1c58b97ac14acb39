"""`self.log` semantics: names, the three metric dicts, reductions, logger rows; same as Lightning."""

from __future__ import annotations

import csv
import importlib
import os
import warnings

import pytest
import torch

import runtime as L
from runtime.callbacks import ModelCheckpoint
from runtime.errors import MisconfigurationException
from tests.helpers.models import RegModel, loader, quiet


def logging_module(Lmod):
    class LogModel(Lmod.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("a", loss)
            self.log("b", loss, on_step=True, on_epoch=True, prog_bar=True)
            self.log("c", float(batch_idx), on_step=False, on_epoch=True, reduce_fx="sum")
            self.log("d", loss * 2, logger=False, prog_bar=True)
            self.log("m", x[:, 0].max(), on_step=False, on_epoch=True, reduce_fx="max")
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.layer(x)
            self.log("v", torch.nn.functional.mse_loss(out, y))
            self.log("vb", out.mean(), on_step=True)

        def on_train_epoch_end(self):
            self.log("ep", float(self.current_epoch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    return LogModel


def run_engine(name, root):
    Lmod = importlib.import_module(name)
    loggers = importlib.import_module(
        f"{name}.loggers" if name == "runtime" else "lightning.pytorch.loggers"
    )
    torch.manual_seed(0)
    model = logging_module(Lmod)()
    # uneven batches (7, 7, 6) make the batch-size weighting visible
    trainer = Lmod.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=2,
        logger=loggers.CSVLogger(root),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, loader(n=20, batch_size=7), loader(n=10, batch_size=4))
        after_fit = (
            {k: v.clone() for k, v in trainer.callback_metrics.items()},
            set(trainer.logged_metrics),
            set(trainer.progress_bar_metrics),
        )
        result = trainer.validate(model, loader(n=10, batch_size=4), verbose=False)
    with open(os.path.join(root, "lightning_logs", "version_0", "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return after_fit, trainer, result, rows


pl = pytest.importorskip("lightning")


def test_metric_dicts_and_csv_match_lightning(tmp_path):
    rt_fit, rt, rt_result, rt_rows = run_engine("runtime", str(tmp_path / "rt"))
    lt_fit, lt, lt_result, lt_rows = run_engine("lightning", str(tmp_path / "lt"))
    assert set(rt_fit[0]) == set(lt_fit[0])
    assert rt_fit[1:] == lt_fit[1:]
    for key, value in lt_fit[0].items():
        torch.testing.assert_close(rt_fit[0][key].float(), value.float(), rtol=1e-5, atol=1e-6)
    assert set(rt.callback_metrics) == set(lt.callback_metrics)
    assert set(rt.logged_metrics) == set(lt.logged_metrics)
    assert set(rt.progress_bar_metrics) == set(lt.progress_bar_metrics)
    for key, value in lt.callback_metrics.items():
        torch.testing.assert_close(
            rt.callback_metrics[key].float(), value.float(), rtol=1e-5, atol=1e-6
        )
    assert rt_result[0].keys() == lt_result[0].keys()
    for key in lt_result[0]:
        assert rt_result[0][key] == pytest.approx(lt_result[0][key], rel=1e-5)
    assert list(rt_rows[0].keys()) == list(lt_rows[0].keys())
    assert len(rt_rows) == len(lt_rows)
    for r, e in zip(rt_rows, lt_rows):
        assert (r["epoch"], r["step"]) == (e["epoch"], e["step"])
        for k in e:
            assert (r[k] == "") == (e[k] == ""), k
            if e[k]:
                assert float(r[k]) == pytest.approx(float(e[k]), rel=1e-5), k


def test_epoch_mean_is_weighted_by_batch_size():
    seen = []

    class M(RegModel):
        def training_step(self, batch, batch_idx):
            value = torch.tensor(float(batch_idx))
            seen.append((float(batch_idx), len(batch[0])))
            self.log("w", value, on_step=False, on_epoch=True)
            return super().training_step(batch, batch_idx)

    trainer = L.Trainer(**quiet(max_epochs=1))
    trainer.fit(M(), loader(n=20, batch_size=8))
    expected = sum(v * n for v, n in seen) / sum(n for _, n in seen)
    assert trainer.callback_metrics["w"].item() == pytest.approx(expected)


@pytest.mark.parametrize(
    "hook,kwargs,message",
    [
        ("on_train_epoch_end", {"on_step": True}, "must be one of"),
        ("configure_optimizers", {}, "You can't `self.log()` inside `configure_optimizers`"),
        ("training_step", {"on_step": False, "on_epoch": False}, "is not useful"),
        ("training_step", {"reduce_fx": "median"}, "reduce_fx"),
    ],
)
def test_log_misuse_is_rejected(hook, kwargs, message):
    class M(RegModel):
        pass

    original = getattr(RegModel, hook)

    def patched(self, *args):
        self.log("x", 1.0, **kwargs)
        return original(self, *args)

    setattr(M, hook, patched)
    with pytest.raises(
        MisconfigurationException, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        L.Trainer(**quiet(max_epochs=1)).fit(M(), loader())


def test_log_is_rejected_in_save_exception_and_predict_hooks(tmp_path):
    """`self.log` in a checkpoint-save hook (also when the save runs inside on_validation_end),
    in on_exception, and in predict hooks raises, as Lightning; the hook the save ran in
    (on_train_batch_end) still logs after it."""
    outcomes = {}

    def attempt(module, where):
        try:
            module.log(f"x_{where}", 1.0)
            outcomes[where] = "logged"
        except MisconfigurationException as e:
            outcomes[where] = str(e)

    class Hooks(L.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint):
            attempt(pl_module, "cb_save")

        def on_exception(self, trainer, pl_module, exception):
            attempt(pl_module, "cb_exception")

    class M(RegModel):
        def on_save_checkpoint(self, checkpoint):
            attempt(self, "save")

        def on_train_batch_end(self, outputs, batch, batch_idx):
            attempt(self, "after_save")

        def on_predict_start(self):
            attempt(self, "predict")

    ckpt = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1)  # in on_train_batch_end
    trainer = L.Trainer(**quiet(max_epochs=1, enable_checkpointing=True, callbacks=[ckpt, Hooks()]))
    trainer.fit(M(), loader(n=16), loader(n=16))
    trainer.predict(M(), loader(n=16))

    class Failing(M):
        def training_step(self, batch, batch_idx):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        L.Trainer(**quiet(max_epochs=1, callbacks=[Hooks()])).fit(Failing(), loader(n=16))
    assert "You can't `self.log()` inside `on_save_checkpoint`" in outcomes["save"]
    assert "You can't `self.log()` inside `on_save_checkpoint`" in outcomes["cb_save"]
    assert "You can't `self.log()` inside `on_exception`" in outcomes["cb_exception"]
    assert "result collection is not registered yet" in outcomes["predict"]
    assert outcomes["after_save"] == "logged"


def test_log_rejects_non_scalars():
    class M(RegModel):
        def training_step(self, batch, batch_idx):
            self.log("vec", batch[0].sum(0))
            return super().training_step(batch, batch_idx)

    with pytest.raises(ValueError, match="must have a single element"):
        L.Trainer(**quiet(max_epochs=1)).fit(M(), loader())


def test_torchmetrics_metric_objects_are_computed_per_epoch():
    torchmetrics = pytest.importorskip("torchmetrics")

    class M(RegModel):
        def __init__(self):
            super().__init__()
            self.mae = torchmetrics.MeanAbsoluteError()

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.mae(self(x), y)
            self.log("val_mae", self.mae)

    model = M()
    trainer = L.Trainer(**quiet(max_epochs=1))
    val = loader(n=24, batch_size=8)
    trainer.fit(model, loader(), val)
    with torch.no_grad():
        x = torch.cat([b[0] for b in val])
        y = torch.cat([b[1] for b in val])
        expected = (model(x) - y).abs().mean()
    torch.testing.assert_close(trainer.callback_metrics["val_mae"], expected)


def test_log_without_trainer_warns_and_does_nothing():
    with pytest.warns(UserWarning, match="not attached to a `Trainer`"):
        warnings.simplefilter("always")
        RegModel().log("x", 1.0)
