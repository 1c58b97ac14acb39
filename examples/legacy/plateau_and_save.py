"""ReduceLROnPlateau fed the validation loss; the weights are saved and reloaded afterwards."""

import os
import tempfile

import torch
from torch import nn, optim


def validate(net, loader, criterion):
    net.eval()
    total = 0.0
    with torch.no_grad():
        for inputs, targets in loader:
            total += criterion(net(inputs), targets).item() * len(inputs)
    return total / len(loader.dataset)


def main():
    torch.manual_seed(2)
    data = torch.randn(240, 4)
    target = torch.sin(data[:, :1]) + data[:, 1:2] ** 2
    ds = torch.utils.data.TensorDataset(data, target)
    train_dl = torch.utils.data.DataLoader(ds, batch_size=24, shuffle=True)
    val_dl = torch.utils.data.DataLoader(ds, batch_size=60)
    net = nn.Sequential(nn.Linear(4, 24), nn.GELU(), nn.Linear(24, 1))
    criterion = nn.SmoothL1Loss()
    optimizer = optim.SGD(net.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    for epoch in range(1, 6):
        net.train()
        for inputs, targets in train_dl:
            optimizer.zero_grad()
            loss = criterion(net(inputs), targets)
            loss.backward()
            optimizer.step()
        val_loss = validate(net, val_dl, criterion)
        scheduler.step(val_loss)
        print(f"epoch {epoch}: val {val_loss:.5f} lr {optimizer.param_groups[0]['lr']}")
    path = os.path.join(tempfile.mkdtemp(), "net.pt")
    torch.save(net.state_dict(), path)
    fresh = nn.Sequential(nn.Linear(4, 24), nn.GELU(), nn.Linear(24, 1))
    fresh.load_state_dict(torch.load(path))
    print(f"FINAL {validate(fresh, val_dl, criterion):.8f}")


if __name__ == "__main__":
    main()
