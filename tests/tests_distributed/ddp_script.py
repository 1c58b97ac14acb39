"""A training script run by the distributed tests, as a user would run theirs.

python ddp_script.py --devices 2 --out result.pt            # the runtime starts rank 1
torchrun --nproc-per-node 2 ddp_script.py --devices 2 ...   # torchrun starts both ranks
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import runtime as L  # noqa: E402
from runtime.callbacks import ModelCheckpoint  # noqa: E402
from runtime.loggers import CSVLogger  # noqa: E402


class Net(L.LightningModule):
    def __init__(self, fail_rank: int = -1, clip: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.fail_rank = fail_rank
        self.prepared = 0

    def on_fit_start(self):
        self.wrapped = type(self.trainer.model).__name__

    def on_train_end(self):
        rank = self.trainer.global_rank
        strategy = self.trainer.strategy
        self.collectives = {
            "all_gather": self.all_gather(torch.tensor([rank, rank * 10])).tolist(),
            "reduce_sum": strategy.reduce(torch.tensor(float(rank + 1)), reduce_op="sum").item(),
            "reduce_mean": strategy.reduce(torch.tensor(float(rank + 1))).item(),
            "broadcast": strategy.broadcast(f"from rank {rank}"),
        }
        strategy.barrier()

    def prepare_data(self):
        marker = os.environ.get("PREPARE_MARKER")
        if marker:
            with open(marker, "a") as f:
                f.write(f"{self.trainer.global_rank}\n")

    def training_step(self, batch, batch_idx):
        if self.global_rank == self.fail_rank and batch_idx == 1:
            raise RuntimeError(f"deliberate failure in rank {self.global_rank}")
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y), sync_dist=True)
        self.log("val_sum", y.sum(), reduce_fx="sum", sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class MicroBatchNet(Net):
    """Manual optimization: each batch in ``micro`` slices, one forward and ``manual_backward``
    per slice (several backward passes inside one step, nanoGPT's accumulation), one step."""

    def __init__(self, micro: int, fail_rank: int = -1):
        super().__init__(fail_rank)
        self.automatic_optimization = False
        self.micro = micro

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        for xs, ys in zip(x.chunk(self.micro), y.chunk(self.micro)):
            loss = nn.functional.mse_loss(self.net(xs), ys) / self.micro
            self.manual_backward(loss)
        opt.step()
        opt.zero_grad()


def data(n: int = 64) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=g))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--strategy", default="auto")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--accumulate", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--clip", type=float, default=None)
    p.add_argument("--precision", default="32-true")
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--sync-bn", action="store_true")
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--root", default=".")
    p.add_argument("--ckpt-in", default=None)
    p.add_argument("--micro", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.manual_seed(0)
    model = MicroBatchNet(a.micro, a.fail_rank) if a.micro else Net(a.fail_rank)
    trainer = L.Trainer(
        accelerator=a.accelerator,
        devices=a.devices,
        strategy=a.strategy,
        precision=a.precision,
        sync_batchnorm=a.sync_bn,
        max_epochs=a.epochs,
        accumulate_grad_batches=a.accumulate,
        gradient_clip_val=a.clip,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        logger=CSVLogger(a.root),
        callbacks=[ModelCheckpoint(dirpath=os.path.join(a.root, "ckpt"), save_top_k=-1)],
        log_every_n_steps=1,
    )
    trainer.fit(
        model,
        DataLoader(data(), batch_size=a.batch),
        DataLoader(data(24), batch_size=4),
        ckpt_path=a.ckpt_in,
    )
    full = trainer.strategy.module_state_dict(model)  # collective under FSDP: every rank calls it
    if trainer.is_global_zero:
        torch.save(
            {
                "params": [v.detach().clone() for v in full.values()],
                "metrics": {k: v.item() for k, v in trainer.callback_metrics.items()},
                "world_size": trainer.world_size,
                "global_step": trainer.global_step,
                "wrapped": getattr(model, "wrapped", None),
                "collectives": getattr(model, "collectives", None),
                "best": trainer.checkpoint_callback.best_model_path,
            },
            a.out,
        )


if __name__ == "__main__":
    main()
