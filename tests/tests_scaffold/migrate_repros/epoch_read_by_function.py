"""A module-level function reads the epoch loop variable as a global (the shape of SimCLR's
main.py: its test() prints `epoch`)."""

import torch
torch.manual_seed(0)
net = torch.nn.Linear(3, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
seen = []


def report(value):
    seen.append((epoch, round(value, 6)))


if __name__ == "__main__":
    for epoch in range(1, 4):
        for x, y in loader:
            optimizer.zero_grad()
            loss = ((net(x) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
        report(loss.item())
    print("FINAL", seen, sum(p.abs().sum().item() for p in net.parameters()))
