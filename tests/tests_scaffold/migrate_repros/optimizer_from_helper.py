"""The optimizer comes from a helper of the script's (`set_optimizer(opt, model)`, SupContrast's
shape) that also draws random numbers (it re-initialises the head): the optimizer trains the
model the call passes, and the helper must run where the script ran it, before the loader's
shuffle draws, never moved into configure_optimizers."""

import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset


def set_optimizer(settings, net):
    nn.init.normal_(net[-1].weight, std=0.1)  # fresh head
    if settings["momentum"] > 0:
        optimizer = optim.SGD(net.parameters(), lr=settings["lr"], momentum=settings["momentum"])
    else:
        optimizer = optim.SGD(net.parameters(), lr=settings["lr"])
    return optimizer


def train(loader, model, criterion, optimizer, epoch):
    model.train()
    total = 0.0
    for xb, yb in loader:
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def main():
    torch.manual_seed(0)
    x = torch.randn(48, 5)
    y = (x[:, :2].sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    optimizer = set_optimizer({"lr": 0.05, "momentum": 0.9}, model)
    x = x + 0.01 * torch.randn_like(x)  # drawn after the helper's draws
    loader = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(1, 4):
        loss = train(loader, model, criterion, optimizer, epoch)
        print(f"epoch {epoch} loss {loss:.6f}")
    print("FINAL", f"{sum(p.double().sum().item() for p in model.parameters()):.10f}")


if __name__ == "__main__":
    main()
