"""Data-parallel training launched by torchrun: the process group reads its rank from the
environment, a DistributedSampler shards the data, DDP averages the gradients (gloo: CPU)."""
# launch: torchrun --nproc-per-node 2

import os
import sys
import tempfile

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def build_data():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(120, 10, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return TensorDataset(x, y)


def main():
    dist.init_process_group(backend="gloo")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.manual_seed(0)
    dataset = build_data()
    sampler = DistributedSampler(dataset, shuffle=True)
    loader = DataLoader(dataset, batch_size=10, sampler=sampler)
    net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    model = DistributedDataParallel(net)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(4):
        sampler.set_epoch(epoch)  # a new shuffle every epoch
        model.train()
        running = 0.0
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
        # every rank reports on stderr: lines of concurrent ranks never split the FINAL line
        print(f"rank {local_rank} epoch {epoch} loss {running / len(loader):.4f}", file=sys.stderr)
    model.eval()
    if dist.get_rank() == 0:
        torch.save(model.module.state_dict(), os.path.join(tempfile.mkdtemp(), "ddp_torchrun.pt"))
        x, y = dataset.tensors
        with torch.no_grad():
            accuracy = (model(x).argmax(dim=1) == y).float().mean().item()
        print(f"FINAL {accuracy:.8f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
