"""mp.spawn after seeding in the launching process: the workers start from fresh interpreters
and never see that seed (their weights come from their own default generator), while every
process the Trainer starts would run the seeding line itself."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def main(rank, world_size):
    os.environ["MASTER_ADDR"] = "localhost"
    os.environ["MASTER_PORT"] = "29613"
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    data = TensorDataset(torch.arange(32.0).view(16, 2), torch.ones(16, 1))
    loader = DataLoader(data, batch_size=4, sampler=DistributedSampler(data))
    model = DDP(nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
    if rank == 0:
        print("FINAL", round(model.module.weight.sum().item(), 6))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.manual_seed(123)
    mp.spawn(main, args=(2,), nprocs=2)
