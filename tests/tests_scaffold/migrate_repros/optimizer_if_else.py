"""The optimizer is chosen by a flag: built in an if/elif/else, handed over as built."""

import sys

import torch
import torch.nn as nn

torch.manual_seed(0)
name = sys.argv[1] if len(sys.argv) > 1 else "adam"
net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
)
if name == "sgd":
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
elif name == "rmsprop":
    optimizer = torch.optim.RMSprop(net.parameters(), lr=0.01)
else:
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
