"""The epoch loop inside a function that receives the model and the optimizer as parameters,
called once from main(); a global of the same name as the parameter trains another model, so
only following the call tells which model the optimizer trains. Evaluates every few steps."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
decoy = nn.Linear(3, 1)
optimizer = torch.optim.SGD(decoy.parameters(), lr=1.0)  # not the one main() passes


def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        total = sum(F.mse_loss(model(x), y).item() for x, y in loader)
    model.train()
    return total / len(loader)


def train_model_simple(model, train_loader, val_loader, optimizer, num_epochs, eval_freq):
    losses, seen = [], 0
    global_step = -1
    for epoch in range(num_epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            seen += x.shape[0]
            global_step += 1
            if global_step % eval_freq == 0:
                losses.append(evaluate(model, val_loader))
                print(f"epoch {epoch} step {global_step} val {losses[-1]:.6f}")
    return losses, seen


def main():
    data = TensorDataset(torch.randn(64, 5), torch.randn(64, 1))
    train_loader = DataLoader(data, batch_size=8, shuffle=True)
    val_loader = DataLoader(TensorDataset(torch.randn(16, 5), torch.randn(16, 1)), batch_size=8)
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    losses, seen = train_model_simple(model, train_loader, val_loader, opt, 3, eval_freq=5)
    return losses, seen, model


if __name__ == "__main__":
    losses, seen, model = main()
    total = sum(p.abs().sum().item() for p in model.parameters())
    print("FINAL", seen, round(sum(losses), 6), round(total, 6), decoy.weight.sum().item())
