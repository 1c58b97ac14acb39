"""A loop of optimizer steps over one batch drawn before it (`batch = next(iter(loader))`, then
`for _ in range(n):` reading `batch`), the shape of captum's influence test helpers: the
training step's own argument must not hide the script's `batch`."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
data = TensorDataset(torch.randn(12, 3), torch.randn(12, 1))
batch = next(iter(DataLoader(data, batch_size=len(data))))
optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
criterion = nn.MSELoss(reduction="sum")
for _ in range(20):
    optimizer.zero_grad()
    output = net(*batch[:-1])
    loss = criterion(output, batch[-1])
    loss.backward()
    optimizer.step()
print("FINAL", round(loss.item(), 6), sum(p.abs().sum().item() for p in net.parameters()))
