"""A classifier trained the way many tutorials do: train()/test() functions, argparse, StepLR."""

import argparse

import runtime as L
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.dropout(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = x[:, :4].argmax(dim=1)  # four classes
    return TensorDataset(x, y)


# one pass over the data per epoch
class UntilBreak:
    """The batches of an epoch up to the training loop's `break`. Once it broke, the
    epoch gets an empty placeholder (on_train_batch_start ends the epoch on it)
    instead of one more batch from the loader: the script drew no batch after its
    `break`, and drawing one can run the dataset's random transforms."""

    def __init__(self, loader, stopped):
        self.loader = loader
        self.stopped = stopped

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while not self.stopped():
            try:
                batch = next(batches)
            except StopIteration:
                return
            yield batch
        yield ()


class LitModel(L.LightningModule):
    """The training loop of this script as a LightningModule (migrated by torch-scaffold)."""

    def __init__(self, model, args, test_loader, train_loader):
        super().__init__()
        self.model = model
        self.stop_epoch = False
        self.args = args
        self.test_loader = test_loader
        self.train_loader = train_loader

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def on_train_epoch_start(self):
        self.model.train()
        self.stop_epoch = False

    def on_train_batch_start(self, batch, batch_idx):
        if self.stop_epoch:
            return -1

    def training_step(self, batch, batch_idx):
        epoch = 1 + self.current_epoch
        data, target = batch
        # clear old gradients
        output = self.model(data)
        loss = F.nll_loss(output, target)
        if batch_idx % self.args.log_interval == 0:
            print(
                f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(self.train_loader.dataset)}]"
                f"\tLoss: {loss.item():.6f}"
            )
            if self.args.dry_run:
                self.stop_epoch = True
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self):
        self.model.eval()
        self.test_loss = 0
        self.correct = 0

    def validation_step(self, batch, batch_idx):
        data, target = batch
        output = self.model(data)
        self.test_loss += F.nll_loss(output, target, reduction="sum").item()
        pred = output.argmax(dim=1, keepdim=True)
        self.correct += pred.eq(target.view_as(pred)).sum().item()

    def on_validation_epoch_end(self):
        self.test_loss /= len(self.test_loader.dataset)
        print(
            f"Test set: Average loss: {self.test_loss:.4f}, Accuracy: {self.correct}/{len(self.test_loader.dataset)}"
        )
        self.log("val_loss", self.test_loss)
        self.final = self.test_loss

    def configure_optimizers(self):
        optimizer = optim.Adadelta(self.model.parameters(), lr=self.args.lr)
        scheduler = StepLR(optimizer, step_size=1, gamma=self.args.gamma)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }


def main():
    parser = argparse.ArgumentParser(description="legacy classifier")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.7)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log-interval", type=int, default=4)
    parser.add_argument("--no-accel", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cpu")
    train_loader = DataLoader(make_data(256, 0), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(make_data(128, 1), batch_size=64)

    model = Net().to(device)

    lit_model = LitModel(model, args, test_loader, train_loader)
    trainer = L.Trainer(
        max_epochs=len(range(1, args.epochs + 1)),
        accelerator=torch.device(device).type,
        devices=1,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
    )
    trainer.fit(lit_model, UntilBreak(train_loader, lambda: lit_model.stop_epoch), test_loader)
    final = lit_model.final

    print(f"FINAL {final:.8f}")


if __name__ == "__main__":
    main()
