"""A train(epoch) function that counts steps in a module global it declares `global`."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(3, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(10, 3), torch.randn(10, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.05)
seen = 0


def train(epoch):
    global seen
    net.train()
    for x, y in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        seen += len(x)


for epoch in range(3):
    train(epoch)
print("FINAL", seen, sum(p.abs().sum().item() for p in net.parameters()))
