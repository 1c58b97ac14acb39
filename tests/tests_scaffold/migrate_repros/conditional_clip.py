"""Gradient clipping under `if clip > 0:` between backward() and step()."""

import torch
import torch.nn as nn

torch.manual_seed(0)
clip = 0.01
net = nn.Linear(4, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
