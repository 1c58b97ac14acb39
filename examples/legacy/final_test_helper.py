"""train()/evaluate() helpers: validation after every epoch, then a final evaluation on a test set
after training (the test set is only touched once)."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_split(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, :3].sum(dim=1) > 0).long()
    return TensorDataset(x, y)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Dropout(0.2), nn.Linear(24, 2))

    def forward(self, x):
        return self.body(x)


def train(model, loader, optimizer):
    model.train()
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()


def evaluate(model, loader):
    """Mean loss and accuracy over a loader."""
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            logits = model(inputs)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
    n = len(loader.dataset)
    print(f"  loss {total / n:.4f} accuracy {correct / n:.4f}")
    return total / n


def main():
    torch.manual_seed(7)
    train_loader = DataLoader(make_split(240, 0), batch_size=24, shuffle=True)
    val_loader = DataLoader(make_split(60, 1), batch_size=30)
    test_loader = DataLoader(make_split(80, 2), batch_size=40)
    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(1, 5):
        train(model, train_loader, optimizer)
        print(f"epoch {epoch}")
        evaluate(model, val_loader)
    # the test set, once
    test_loss = evaluate(model, test_loader)
    with torch.no_grad():
        probe = model(torch.ones(1, 12)).sum().item()  # still in eval mode: no dropout
    print(f"FINAL {test_loss:.8f} {probe:.6f}")


if __name__ == "__main__":
    main()
