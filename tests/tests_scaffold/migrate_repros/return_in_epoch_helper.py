"""`return` inside the batch loop of a helper the epoch loop calls each epoch: it ends that
epoch's batches only (the next epoch calls the helper again), so it is not a stop of the
Trainer for the whole run. One Trainer for all epochs is refused (SCF319); the helper is
converted on its own instead (one Trainer per call, which the `return` stops)."""

import torch
from torch.utils.data import DataLoader, TensorDataset


def train(net, data_loader, opt, max_batches):
    net.train()
    seen = 0
    for x, y in data_loader:
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += 1
        if seen >= max_batches:
            return seen
    return seen


if __name__ == "__main__":
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader = DataLoader(TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4)
    for epoch in range(3):
        train(model, train_loader, optimizer, 2)
    print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
