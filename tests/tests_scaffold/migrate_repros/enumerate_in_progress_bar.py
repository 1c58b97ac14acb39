"""A progress bar over enumerate(loader, 1) made in the epoch loop (pytorch-vae's shape): the
index restarts at 1 every epoch."""

import torch
import torch.nn as nn
from tqdm import tqdm

torch.manual_seed(0)
X = torch.randn(20, 3)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X), batch_size=4)

net = nn.Linear(3, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.05)
seen = []
for epoch in range(1, 4):
    stream = tqdm(enumerate(loader, 1), disable=True)
    for index, (x,) in stream:
        opt.zero_grad()
        nn.functional.mse_loss(net(x), x[:, :1] * index).backward()
        opt.step()
        seen.append(index)
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6), sum(seen))
