"""zip over two loaders in the batch loop header, with parenthesized one-element targets."""

import torch
import torch.nn as nn

torch.manual_seed(0)
X, Y = torch.randn(20, 3), torch.randn(20, 1)
a = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X), batch_size=4)
b = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Y), batch_size=4)

net = nn.Linear(3, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(3):
    for (x,), (y,) in zip(a, b):
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        opt.step()
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6))
