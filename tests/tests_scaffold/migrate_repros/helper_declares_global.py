"""A per-batch helper declares `global steps` and counts steps; the loop reads the count."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=4
)
steps = 0


def train_step(x, y):
    global steps
    opt.zero_grad()
    loss = nn.functional.mse_loss(net(x), y)
    loss.backward()
    opt.step()
    steps += 1
    return loss.item()


for epoch in range(2):
    for x, y in loader:
        value = train_step(x, y)
        if steps % 3 == 0:
            print("step", steps, round(value, 6))
print("FINAL", steps, sum(p.abs().sum().item() for p in net.parameters()))
