"""A generator function called in the batch loop header: the script makes a fresh generator
every epoch; handed to a Trainer once, it would run out after the first epoch."""

import torch
import torch.nn as nn

torch.manual_seed(0)
X, Y = torch.randn(20, 3), torch.randn(20, 1)


def batches(bs):
    for i in range(0, len(X), bs):
        yield X[i : i + bs], Y[i : i + bs]


net = nn.Linear(3, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(3):
    for x, y in batches(4):
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        opt.step()
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6))
