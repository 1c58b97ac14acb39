"""The whole script under `if __name__ == "__main__":`."""

import torch
import torch.nn as nn

if __name__ == "__main__":
    torch.manual_seed(1)
    net = nn.Linear(4, 1)
    xs, ys = torch.randn(8, 4), torch.randn(8, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            opt.step()
    print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
