"""`use_cuda = torch.cuda.is_available(); if use_cuda: net.cuda()`: runs on a CPU-only machine."""

import torch
import torch.nn as nn

torch.manual_seed(0)
use_cuda = torch.cuda.is_available()
net = nn.Linear(4, 1)
if use_cuda:
    net.cuda()
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        if use_cuda:
            x, y = x.cuda(), y.cuda()
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
