"""The second phase keeps stepping the first phase's optimizer (its momentum carries over)."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
a = DataLoader(TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6)
b = DataLoader(TensorDataset(torch.randn(18, 3), torch.randn(18, 1)), batch_size=6)
model = nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(2):
    for x, y in a:
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
for epoch in range(2):
    for x, y in b:
        opt.zero_grad()
        nn.functional.l1_loss(model(x), y).backward()
        opt.step()
print("FINAL", round(sum(p.abs().sum().item() for p in model.parameters()), 6))
