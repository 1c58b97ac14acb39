"""LightningModule / DataModule utilities: hparams, export, freeze, device, datamodule hooks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import runtime as L
from runtime.errors import MisconfigurationException
from tests.helpers.models import RegModel, loader, quiet


def test_save_hyperparameters_collects_init_args():
    class M(L.LightningModule):
        def __init__(self, a, b=2, *, c="x", net=None, **extra):
            super().__init__()
            self.save_hyperparameters(ignore=["net"])

    m = M(1, c="y", net=nn.Linear(1, 1), d=4)
    assert dict(m.hparams) == {"a": 1, "b": 2, "c": "y", "d": 4}
    assert m.hparams.a == 1 and m.hparams_initial == m.hparams

    class Sub(M):
        def __init__(self, width=3):
            super().__init__(a=width)

    assert dict(Sub().hparams)["a"] == 3

    class FromDict(L.LightningModule):
        def __init__(self, cfg):
            super().__init__()
            self.save_hyperparameters(cfg)

    assert FromDict({"lr": 0.1}).hparams.lr == 0.1


def test_non_plain_hparams_stay_out_of_the_checkpoint(tmp_path):
    class M(RegModel):
        def __init__(self, act=None, **kw):
            super().__init__(**kw)

    t = L.Trainer(**quiet(max_epochs=1))
    t.fit(M(act=nn.ReLU()), loader())
    t.save_checkpoint(tmp_path / "m.ckpt")
    ckpt = torch.load(tmp_path / "m.ckpt", weights_only=True)
    assert "act" not in ckpt["hyper_parameters"] and ckpt["hyper_parameters"]["lr"] == 0.05
    loaded = M.load_from_checkpoint(tmp_path / "m.ckpt", act=nn.ReLU())
    assert isinstance(loaded, M)


def test_properties_without_trainer():
    m = RegModel()
    assert m.device == torch.device("cpu") and m.dtype == torch.float32
    assert m.current_epoch == 0 and m.global_step == 0 and m.global_rank == 0
    with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
        _ = m.trainer
    with pytest.raises(RuntimeError, match="not attached"):
        m.print("x")
    m.double()
    assert m.dtype == torch.float64


def test_freeze_unfreeze():
    m = RegModel()
    m.freeze()
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    m.unfreeze()
    assert m.training and all(p.requires_grad for p in m.parameters())


def test_jit_trace_and_torchscript_without_trainer(tmp_path):
    m = RegModel()
    m.example_input_array = torch.randn(2, 8)
    traced = torch.jit.trace(m, m.example_input_array)
    torch.testing.assert_close(traced(m.example_input_array), m(m.example_input_array))
    scripted = m.to_torchscript(tmp_path / "m.pt", method="trace")
    torch.testing.assert_close(
        torch.jit.load(tmp_path / "m.pt")(m.example_input_array), scripted(m.example_input_array)
    )
    assert m.training


def test_to_onnx_needs_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        m = RegModel()
        with pytest.raises(ModuleNotFoundError, match="requires `onnx`"):
            m.to_onnx("m.onnx", torch.randn(1, 8))
    else:
        pytest.skip("onnx installed")


def test_print_only_with_trainer(capsys):
    class M(RegModel):
        def on_train_start(self):
            self.print("hello from rank zero")

    L.Trainer(**quiet(max_epochs=1)).fit(M(), loader(n=8))
    assert "hello from rank zero" in capsys.readouterr().out


def test_predict_returns_batches_and_restores_mode():
    m = RegModel()
    out = L.Trainer(**quiet()).predict(m, loader(n=20, batch_size=8))
    assert [o.shape[0] for o in out] == [8, 8, 4] and m.training
    with pytest.raises(RuntimeError, match="dataloader_idx"):
        L.Trainer(**quiet()).predict(m, [loader(n=8), loader(n=16)])

    class Multi(RegModel):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return dataloader_idx

    two = L.Trainer(**quiet()).predict(Multi(), [loader(n=8), loader(n=16)])
    assert two == [[0], [1, 1]]


def test_test_returns_metrics_per_dataloader():
    class M(RegModel):
        def test_step(self, batch, batch_idx, dataloader_idx=0):
            self.log("t", float(dataloader_idx))

    out = L.Trainer(**quiet()).test(M(), [loader(n=8), loader(n=8)], verbose=False)
    assert out == [{"t/dataloader_idx_0": 0.0}, {"t/dataloader_idx_1": 1.0}]

    class NoIdx(RegModel):
        def test_step(self, batch, batch_idx):
            pass

    with pytest.raises(RuntimeError, match="dataloader_idx"):
        L.Trainer(**quiet()).test(NoIdx(), [loader(n=8), loader(n=8)], verbose=False)


class DM(L.LightningDataModule):
    def __init__(self, n=32):
        super().__init__()
        self.save_hyperparameters()
        self.calls = []
        self.counter = 0

    def prepare_data(self):
        self.calls.append("prepare_data")

    def setup(self, stage):
        self.calls.append(f"setup:{stage}")

    def teardown(self, stage):
        self.calls.append(f"teardown:{stage}")

    def train_dataloader(self):
        return loader(n=self.hparams.n)

    def val_dataloader(self):
        return loader(n=8)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        self.counter += 1
        return batch

    def state_dict(self):
        return {"counter": self.counter}

    def load_state_dict(self, state):
        self.counter = state["counter"]


def test_datamodule_hooks_state_and_hparams(tmp_path):
    dm = DM()
    t = L.Trainer(**quiet(max_epochs=1))
    t.fit(RegModel(), dm)
    assert dm.calls == ["prepare_data", "setup:fit", "teardown:fit"]
    assert dm.counter == 4 + 1  # 4 train batches, 1 val batch (sanity check is off)
    t.save_checkpoint(tmp_path / "c.ckpt")
    ckpt = torch.load(tmp_path / "c.ckpt", weights_only=True)
    assert ckpt["DM"] == {"counter": 5} and ckpt["datamodule_hyper_parameters"] == {"n": 32}
    restored = DM.load_from_checkpoint(tmp_path / "c.ckpt")
    assert restored.counter == 5 and restored.hparams.n == 32


def test_from_datasets():
    ds = TensorDataset(torch.randn(10, 8), torch.randn(10, 1))
    dm = L.LightningDataModule.from_datasets(ds, val_dataset=ds, batch_size=5)
    t = L.Trainer(**quiet(max_epochs=1))
    t.fit(RegModel(), datamodule=dm)
    assert t.global_step == 2 and "val_loss" in t.callback_metrics


def test_from_datasets_passes_batch_size_and_workers_to_an_init_that_names_them():
    ds = TensorDataset(torch.randn(10, 8), torch.randn(10, 1))

    class Named(L.LightningDataModule):
        def __init__(self, batch_size=1, num_workers=0):
            super().__init__()
            self.save_hyperparameters()

    dm = Named.from_datasets(ds, batch_size=4, num_workers=2)
    assert dict(dm.hparams) == {"batch_size": 4, "num_workers": 2}

    class Other(L.LightningDataModule):
        def __init__(self, other, batch_size=1):
            super().__init__()
            self.other, self.batch_size = other, batch_size

    dm = Other.from_datasets(ds, batch_size=4, num_workers=2, other=5)
    assert (dm.other, dm.batch_size) == (5, 4) and not hasattr(dm, "num_workers")
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'other'"):
        Other.from_datasets(ds, batch_size=4)

    class Kwargs(L.LightningDataModule):
        def __init__(self, **kwargs):
            super().__init__()
            self.seen = kwargs

    dm = Kwargs.from_datasets(ds, batch_size=10, num_workers=0, another=None)
    assert dm.seen == {"batch_size": 10, "num_workers": 0, "another": None}
    assert next(iter(dm.train_dataloader()))[0].shape[0] == 10


def test_fit_argument_errors():
    t = L.Trainer(**quiet(max_epochs=1))
    with pytest.raises(MisconfigurationException, match="cannot pass `train_dataloaders`"):
        t.fit(RegModel(), loader(), datamodule=DM())
    with pytest.raises(TypeError, match="must be a `LightningModule`.*got `Linear`"):
        t.fit(nn.Linear(2, 2), loader())

    class NoLoader(RegModel):
        pass

    with pytest.raises(MisconfigurationException, match="train_dataloader"):
        t.fit(NoLoader())


def test_import_runtime_is_light():
    code = (
        "import sys, runtime; heavy = [m for m in ('lightning', 'torchmetrics', 'tensorboard', "
        "'rich', 'pandas', 'sympy', 'yaml', 'copier', 'libcst') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_import_scaffold_is_light():
    code = (
        "import sys, scaffold.cli; heavy = [m for m in ('torch', 'copier', 'libcst') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_lightning_style_namespace():
    from runtime.callbacks import ModelCheckpoint

    assert L.pytorch.callbacks.ModelCheckpoint is ModelCheckpoint
