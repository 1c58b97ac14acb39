"""A training helper whose result is used inside an expression (`losses.append(round(train(e)))`,
pyGAT's shape): the call is split out onto its own line first."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6, shuffle=True
)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)


def train(epoch):
    net.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


losses = []
for epoch in range(3):
    losses.append(round(train(epoch), 6))  # keep the epoch's loss
print("FINAL", losses, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
