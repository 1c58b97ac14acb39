"""The per-epoch helper wraps its loader parameter in a progress bar first (the shape of
SimCLR's main.py): `trainer.fit` must get the caller's loader, not the parameter's name."""

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm


def train(net, data_loader, opt):
    net.train()
    bar = tqdm(data_loader, disable=True)
    total = 0.0
    for x, y in bar:
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return total


if __name__ == "__main__":
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader = DataLoader(TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4)
    for epoch in range(2):
        train(model, train_loader, optimizer)
    print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
