"""A Lightning 1.x script with spellings 2.0 removed: assigning the hparams, a checkpoint callback
with a file path and a period, the epoch-end hook, the singular train loader keyword of fit, gpus,
the progress bar refresh rate and validation_epoch_end."""

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, EarlyStopping
from torch.utils.data import DataLoader, TensorDataset


class Lit(pl.LightningModule):
    def __init__(self, hparams):
        super().__init__()
        self.hparams = hparams
        self.layer = torch.nn.Linear(4, 1)
        self.metric = pl.metrics.MeanSquaredError()

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"val_loss": torch.nn.functional.mse_loss(self(x), y)}

    def validation_epoch_end(self, outputs):
        avg = torch.stack([o["val_loss"] for o in outputs]).mean()
        self.log("val_loss", avg)

    def on_epoch_end(self):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


if __name__ == "__main__":
    pl.seed_everything(0)
    ds = TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
    ckpt = ModelCheckpoint(filepath="ckpts/{epoch}", period=1, monitor="val_loss")
    trainer = pl.Trainer(gpus=0, max_epochs=2, callbacks=[ckpt, EarlyStopping("val_loss")], progress_bar_refresh_rate=0, weights_summary=None)
    model = Lit({"lr": 0.1})
    trainer.fit(model, train_dataloader=DataLoader(ds, batch_size=8), val_dataloaders=DataLoader(ds, batch_size=8))
    print("FINAL", trainer.callback_metrics["val_loss"].item())
