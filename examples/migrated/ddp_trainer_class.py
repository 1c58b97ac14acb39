"""Data-parallel training the way the DDP tutorial series does it: a hand-written Trainer class,
mp.spawn, a process group, a DistributedSampler and a DDP wrapper (gloo, so it runs on CPU)."""

import argparse
import os
import sys
import tempfile

import runtime as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler


class RegressionSet(Dataset):
    def __init__(self, size):
        g = torch.Generator().manual_seed(3)
        self.x = torch.randn(size, 20, generator=g)
        self.y = self.x[:, :5].sum(dim=1, keepdim=True) + 0.1 * torch.randn(size, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Trainer:
    def __init__(self, model, train_data, optimizer, gpu_id, save_every):
        self.gpu_id = gpu_id
        self.model = model
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every
        self.model = model

    def _save_checkpoint(self, epoch):
        ckp = self.model.state_dict()
        torch.save(ckp, os.path.join(tempfile.gettempdir(), f"ddp_trainer_class_{os.getpid()}.pt"))
        print(f"Epoch {epoch} | Training checkpoint saved")

    def train(self, max_epochs):
        runner = self  # the trainer object, as seen from the LightningModule below

        class LitModel(L.LightningModule):
            """The training loop of this script as a LightningModule (migrated by torch-scaffold)."""

            def __init__(self, model, optimizer):
                super().__init__()
                self.model = model
                self.optimizer = optimizer

            def forward(self, *args, **kwargs):
                return self.model(*args, **kwargs)

            def on_train_epoch_start(self):
                epoch = self.current_epoch
                b_sz = len(next(iter(runner.train_data))[0])
                # every rank reports on stderr: lines of concurrent ranks never split the FINAL line
                print(
                    f"[rank {runner.gpu_id}] Epoch {epoch} | Batchsize: {b_sz} | Steps: {len(runner.train_data)}",
                    file=sys.stderr,
                )
                runner.train_data.sampler.set_epoch(epoch)

            def training_step(self, batch, batch_idx):
                source, targets = batch
                output = runner.model(source)
                loss = F.mse_loss(output, targets)
                self.log("train_loss", loss, prog_bar=True)
                return loss

            def on_train_epoch_end(self):
                epoch = self.current_epoch
                if runner.gpu_id == 0 and epoch % runner.save_every == 0:
                    runner._save_checkpoint(epoch)

            def configure_optimizers(self):
                return self.optimizer

        lit_model = LitModel(runner.model, runner.optimizer)
        trainer2 = L.Trainer(
            max_epochs=len(range(max_epochs)),
            accelerator="cpu",
            strategy="ddp",
            devices=TRAINER_DEVICES,
            use_distributed_sampler=False,
            enable_progress_bar=False,
        )
        trainer2.fit(lit_model, runner.train_data)


def load_train_objs():
    torch.manual_seed(0)
    train_set = RegressionSet(96)  # load your dataset
    model = torch.nn.Linear(20, 1)  # load your model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    return train_set, model, optimizer


def prepare_dataloader(dataset, batch_size):
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, sampler=DistributedSampler(dataset, num_replicas=TRAINER_DEVICES, rank=int(os.environ.get("RANK", 0))))


def main(rank, world_size, save_every, total_epochs, batch_size):
    dataset, model, optimizer = load_train_objs()
    train_data = prepare_dataloader(dataset, batch_size)
    trainer = Trainer(model, train_data, optimizer, rank, save_every)
    trainer.train(total_epochs)
    if rank == 0:
        x, y = dataset.x, dataset.y
        with torch.no_grad():
            print(f"FINAL {F.mse_loss(model(x), y).item():.8f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="simple distributed training job")
    parser.add_argument("--total-epochs", type=int, default=3)
    parser.add_argument("--save-every", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    world_size = 2
    TRAINER_DEVICES = world_size  # processes the Trainer starts (was spawn's nprocs)
    main(int(os.environ.get("LOCAL_RANK", 0)), world_size, args.save_every, args.total_epochs, args.batch_size)
