"""A Lightning 1.x-era script: pytorch_lightning imports, gpus=, precision=16, *_epoch_end(outputs)."""
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LitClassifier(pl.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
        self.mse = pl.metrics.MeanSquaredError()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        return loss

    def training_epoch_end(self, outputs):
        # mean training loss of the epoch
        avg = torch.stack([o["loss"] for o in outputs]).mean()
        self.log("train_loss_epoch", avg)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        return {"val_loss": nn.functional.cross_entropy(logits, y), "n": len(y)}

    def validation_epoch_end(self, outputs):
        total = sum(o["val_loss"] * o["n"] for o in outputs) / sum(o["n"] for o in outputs)
        self.log("val_loss", total)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 6, generator=g)
    return TensorDataset(x, x[:, :3].argmax(dim=1))


if __name__ == "__main__":
    pl.seed_everything(0)
    model = LitClassifier()
    trainer = pl.Trainer(
        max_epochs=3,
        gpus=0,
        precision=32,
        progress_bar_refresh_rate=0,
        weights_summary=None,
        checkpoint_callback=False,
        logger=False,
        callbacks=[EarlyStopping(monitor="val_loss", patience=5)],
    )
    trainer.fit(model, DataLoader(data(0), batch_size=16), DataLoader(data(1), batch_size=32))
    print(f"FINAL {trainer.callback_metrics['val_loss'].item():.8f}")
