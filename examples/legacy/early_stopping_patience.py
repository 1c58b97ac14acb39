"""Early stopping the textbook way: the best validation loss so far, a counter of epochs without
improvement, and a stop once the counter reaches the patience; the best weights are kept."""

import copy

import torch
import torch.nn.functional as F
from torch import nn


def validation_loss(model, x, y):
    model.eval()
    with torch.no_grad():
        return F.mse_loss(model(x), y).item()


def main():
    torch.manual_seed(3)
    x = torch.randn(300, 6)
    y = x @ torch.linspace(-1, 1, 6).unsqueeze(1) + 0.3 * torch.randn(300, 1)
    train = torch.utils.data.TensorDataset(x[:200], y[:200])
    loader = torch.utils.data.DataLoader(train, batch_size=20, shuffle=True)
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    patience = 3
    best_loss = float("inf")
    epochs_without_improvement = 0
    best_weights = None
    for epoch in range(60):
        model.train()
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs), targets)
            loss.backward()
            optimizer.step()
        val_loss = validation_loss(model, x[200:], y[200:])
        print(f"epoch {epoch} val_loss {val_loss:.5f}")
        if val_loss < best_loss:
            best_loss = val_loss
            epochs_without_improvement = 0
            best_weights = copy.deepcopy(model.state_dict())  # keep the best model
        else:
            epochs_without_improvement += 1
            if epochs_without_improvement >= patience:
                break
    model.load_state_dict(best_weights)
    print(f"FINAL {validation_loss(model, x[200:], y[200:]):.8f}")


if __name__ == "__main__":
    main()
