"""A per-epoch helper that builds its optimizer at every call with that epoch's learning rate
(wide-resnet.pytorch's shape): one Trainer per call keeps the fresh optimizer state."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6
)
net = nn.Linear(3, 1)


def learning_rate(epoch):
    return 0.1 * (0.5**epoch)


def train(epoch):
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate(epoch), momentum=0.9)
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
    loss = train(epoch)
    losses.append(round(loss, 6))
print("FINAL", losses, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
