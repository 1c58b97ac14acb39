"""Train a small classifier on synthetic data with the bundled runtime (the README's first command).

python examples/demo.py            # a few epochs on CPU, checkpoints + CSV logs in ./demo_runs
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

import runtime as L
from runtime.callbacks import EarlyStopping, ModelCheckpoint
from runtime.loggers import CSVLogger


class Classifier(L.LightningModule):
    def __init__(self, n_features: int = 16, n_classes: int = 4, lr: float = 1e-2):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(n_features, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x):
        return self.net(x)

    def _step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log(f"{stage}_loss", loss, prog_bar=True)
        self.log(f"{stage}_acc", acc, prog_bar=stage != "train")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.trainer.max_epochs)
        return {"optimizer": opt, "lr_scheduler": sched}


class SyntheticData(L.LightningDataModule):
    """Gaussian blobs, one per class: learnable, offline, deterministic."""

    def __init__(
        self, n: int = 4096, n_features: int = 16, n_classes: int = 4, batch_size: int = 64
    ):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage):
        g = torch.Generator().manual_seed(0)
        hp = self.hparams
        centers = torch.randn(hp.n_classes, hp.n_features, generator=g) * 0.35
        y = torch.randint(0, hp.n_classes, (hp.n,), generator=g)
        x = centers[y] + torch.randn(hp.n, hp.n_features, generator=g)
        self.train_set, self.val_set, self.test_set = random_split(
            TensorDataset(x, y), [0.8, 0.1, 0.1], generator=g
        )

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=256)


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--root", default="demo_runs")
    p.add_argument("--precision", default="32-true")
    args = p.parse_args(argv)
    L.seed_everything(42)
    model, data = Classifier(), SyntheticData()
    trainer = L.Trainer(
        max_epochs=args.epochs,
        precision=args.precision,
        default_root_dir=args.root,
        logger=CSVLogger(args.root),
        callbacks=[
            ModelCheckpoint(monitor="val_loss", filename="best-{epoch:02d}-{val_acc:.2f}"),
            EarlyStopping("val_loss", patience=3),
        ],
    )
    trainer.fit(model, data)
    result = trainer.test(ckpt_path="best", datamodule=data)
    print(f"best checkpoint: {trainer.checkpoint_callback.best_model_path}")
    return result[0]["test_acc"]


if __name__ == "__main__":
    main()
