"""`return` inside the batch loop of a loop that is also validated each epoch: when the Trainer
stops early it runs validation once more, the script did not; refused (SCF319)."""

import torch
import torch.nn as nn


def train(loader, val_loader, net, epochs):
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    steps = 0
    for epoch in range(epochs):
        net.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            optimizer.step()
            steps += 1
            if steps >= 10:
                return steps
        net.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                total += nn.functional.mse_loss(net(x), y).item()
        print("val", epoch, round(total, 6))
    return steps


torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(32, 3), torch.randn(32, 1))
loader = torch.utils.data.DataLoader(data, batch_size=8)
net = nn.Linear(3, 1)
print("FINAL", train(loader, loader, net, 5), round(net.weight.sum().item(), 6))
