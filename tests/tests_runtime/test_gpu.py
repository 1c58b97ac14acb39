"""CUDA-only behaviour (skipped without CUDA; the CPU variants run in the other test files)."""

from __future__ import annotations

import pytest
import torch

import runtime as L
from tests.helpers.models import RegModel, loader, quiet

pytestmark = pytest.mark.gpu


class DeviceCheck(RegModel):
    def training_step(self, batch, batch_idx):
        assert batch[0].device.type == "cuda" and self.device.type == "cuda"
        return super().training_step(batch, batch_idx)


def test_fit_on_cuda_moves_model_and_batches(tmp_path):
    model = DeviceCheck()
    t = L.Trainer(**quiet(accelerator="gpu", devices=1, max_epochs=1))
    t.fit(model, loader())
    assert next(model.parameters()).is_cuda and t.global_step == 8


def test_16_mixed_uses_grad_scaler_and_checkpoints_its_state(tmp_path):
    seen = []

    class M(DeviceCheck):
        def training_step(self, batch, batch_idx):
            out = self(batch[0])
            seen.append(out.dtype)
            return torch.nn.functional.mse_loss(out.float(), batch[1])

    t = L.Trainer(**quiet(accelerator="cuda", devices=1, max_epochs=1, precision="16-mixed"))
    t.fit(M(), loader())
    assert seen[0] == torch.float16 and t.scaler is not None
    t.save_checkpoint(tmp_path / "amp.ckpt")
    ckpt = torch.load(tmp_path / "amp.ckpt", weights_only=True)
    assert "scale" in ckpt["MixedPrecision"]


def test_bf16_mixed_on_cuda():
    seen = []

    class M(DeviceCheck):
        def training_step(self, batch, batch_idx):
            seen.append(self(batch[0]).dtype)
            return super().training_step(batch, batch_idx)

    L.Trainer(**quiet(accelerator="cuda", max_epochs=1, precision="bf16-mixed")).fit(M(), loader())
    assert seen[0] == torch.bfloat16


def test_cuda_checkpoint_loads_on_cpu(tmp_path):
    t = L.Trainer(**quiet(accelerator="cuda", max_epochs=1))
    t.fit(RegModel(), loader())
    t.save_checkpoint(tmp_path / "c.ckpt")
    loaded = RegModel.load_from_checkpoint(tmp_path / "c.ckpt", map_location="cpu")
    assert next(loaded.parameters()).device.type == "cpu"
