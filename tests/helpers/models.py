"""Small models and data shared by the runtime tests (synthetic data only)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import runtime as L


def regression_data(n: int = 64, d: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    return TensorDataset(x, x @ w + 0.1 * torch.randn(n, 1, generator=g))


def loader(
    n: int = 64,
    batch_size: int = 8,
    shuffle: bool = False,
    seed: int | None = None,
    data_seed: int = 0,
    **kw,
) -> DataLoader:
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        regression_data(n, seed=data_seed),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=gen,
        **kw,
    )


def make_net(d: int = 8, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))


class RegModel(L.LightningModule):
    """A regression module that logs train/val/test losses; knobs cover optimizer setups."""

    def __init__(
        self,
        lr: float = 0.05,
        dropout: float = 0.0,
        optimizer: str = "sgd",
        scheduler: str | None = None,
        d: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = make_net(d, dropout)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=0.9)
        if hp.scheduler == "step":
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]
        if hp.scheduler == "batch":
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
            return {"optimizer": opt, "lr_scheduler": sched, "monitor": "val_loss"}
        return opt


def quiet(**kw) -> dict:
    """Trainer kwargs for tests: no progress bar / summary; logger & checkpoints as given."""
    base = dict(
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    base.update(kw)
    return base


def params_of(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]
