"""Training inside main(): gradient clipping and a per-batch OneCycle schedule."""

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    def __init__(self, d_in=10, d_hidden=32, n_classes=3):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, n_classes)
        )

    def forward(self, x):
        return self.layers(x)


def evaluate(model, loader):
    """Mean cross-entropy over a loader (a helper that returns a metric)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            total += F.cross_entropy(model(xb), yb, reduction="sum").item()
            count += len(yb)
    model.train()
    return total / count


def main():
    torch.manual_seed(3)
    xs = torch.randn(300, 10)
    ys = (xs[:, 0] > 0).long() + (xs[:, 1] > 0.5).long()
    dataset = torch.utils.data.TensorDataset(xs, ys)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=20, shuffle=True)
    val_loader = torch.utils.data.DataLoader(dataset, batch_size=100)
    device = "cpu"
    model = MLP().to(device)
    epochs = 3
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=5e-2, total_steps=epochs * len(train_loader)
    )
    step = 0
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keep updates bounded
            optimizer.step()
            scheduler.step()
            step += 1
        val = evaluate(model, val_loader)
        print(f"epoch {epoch} step {step} val {val:.4f}")
    print(f"FINAL {evaluate(model, val_loader):.8f} after {step} steps")


if __name__ == "__main__":
    main()
