"""train() returns the epoch's mean loss, which main() prints and tracks."""
import torch
import torch.nn as nn


def train(net, loader, opt, loss_fn):
    net.train()
    total = 0.0
    for inputs, targets in loader:
        opt.zero_grad()
        loss = loss_fn(net(inputs), targets)
        loss.backward()
        opt.step()
        total += loss.item() * len(inputs)
    return total / len(loader.dataset)


def main():
    torch.manual_seed(4)
    xs = torch.randn(160, 3)
    ys = xs.pow(2).sum(dim=1, keepdim=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=16, shuffle=True)
    net = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    history = []
    for epoch in range(5):
        epoch_loss = train(net, loader, opt, nn.MSELoss())
        history.append(epoch_loss)
        print(f"epoch {epoch}: {epoch_loss:.5f}")
    print(f"FINAL {history[-1]:.8f} best={min(history):.6f}")


if __name__ == "__main__":
    main()
