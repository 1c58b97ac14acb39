"""Train a small classifier on synthetic data with the bundled runtime (the README's first command).

python examples/demo.py            # 10 epochs on CPU (seconds), checkpoints + CSV logs in ./demo_runs

One line per epoch shows it learning (validation loss falling, accuracy rising); at the end it
tests the best checkpoint and says where the logs and the checkpoint are.
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
        # per-epoch means (Lightning's default for validation/test; asked for in training)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", acc, prog_bar=stage != "train", on_step=False, on_epoch=True)
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
    """Points in 16 dimensions whose class is how far they lie from the origin in the first
    four (four rings of equal size): not linearly separable, so the network has something to
    learn over several epochs. Offline and deterministic."""

    def __init__(
        self, n: int = 4096, n_features: int = 16, n_classes: int = 4, batch_size: int = 64
    ):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage):
        g = torch.Generator().manual_seed(0)
        hp = self.hparams
        x = torch.randn(hp.n, hp.n_features, generator=g)
        radius = x[:, :4].norm(dim=1)
        y = torch.bucketize(radius, radius.quantile(torch.linspace(0, 1, hp.n_classes + 1)[1:-1]))
        self.train_set, self.val_set, self.test_set = random_split(
            TensorDataset(x, y), [0.8, 0.1, 0.1], generator=g
        )

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=256)


class EpochLine(L.Callback):
    """One line per epoch, so the learning is visible without scrolling a progress bar."""

    def on_train_epoch_end(self, trainer, pl_module):
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        print(
            f"epoch {trainer.current_epoch:2d}  train_loss {m['train_loss']:.3f}  "
            f"val_loss {m['val_loss']:.3f}  val_acc {m['val_acc']:.3f}",
            flush=True,
        )


def main(argv=None) -> float:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--root", default="demo_runs")
    p.add_argument("--precision", default="32-true")
    p.add_argument("--progress-bar", action="store_true", help="show the progress bar")
    args = p.parse_args(argv)
    L.seed_everything(42)
    model, data = Classifier(), SyntheticData()
    trainer = L.Trainer(
        max_epochs=args.epochs,
        precision=args.precision,
        default_root_dir=args.root,
        logger=CSVLogger(args.root),
        enable_progress_bar=args.progress_bar,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(monitor="val_loss", filename="best-{epoch:02d}-{val_acc:.2f}"),
            EarlyStopping("val_loss", patience=3),
            EpochLine(),
        ],
    )
    trainer.fit(model, data)
    result = trainer.test(ckpt_path="best", datamodule=data, verbose=False)
    test_acc = result[0]["test_acc"]
    print(f"test accuracy of the best checkpoint: {test_acc:.3f}")
    print(f"best checkpoint: {trainer.checkpoint_callback.best_model_path}")
    print(f"metrics per epoch (CSV): {trainer.logger.log_dir}/metrics.csv")
    return test_acc


if __name__ == "__main__":
    main()
