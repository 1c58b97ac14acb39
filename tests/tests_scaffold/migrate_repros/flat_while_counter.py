"""A flat `while step < N` loop on freshly drawn batches (no loader, no epoch loop)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
step = 0
while step < 6:
    x, y = torch.randn(4, 4), torch.randn(4, 1)
    loss = nn.functional.mse_loss(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
print("FINAL", step, sum(p.abs().sum().item() for p in net.parameters()))
