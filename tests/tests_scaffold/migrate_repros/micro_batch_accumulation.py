"""Gradient accumulation written as an inner loop over micro-batches; the step is in the loop
around it (the shape of nanoGPT's train.py)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
data = torch.randn(64, 4)
target = torch.randn(64, 1)
micro_steps = 4
for it in range(4):
    for micro in range(micro_steps):
        idx = torch.randint(0, 64, (4,))
        loss = nn.functional.mse_loss(net(data[idx]), target[idx]) / micro_steps
        loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
