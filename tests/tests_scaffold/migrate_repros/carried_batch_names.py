"""Batch variables reused by a later loop, and a name first bound inside the loop read after it."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 2)
data = torch.utils.data.TensorDataset(torch.randn(12, 4), torch.randint(0, 2, (12,)))
loader = torch.utils.data.DataLoader(data, batch_size=4)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for i, (inputs, targets) in enumerate(loader):
        logits = net(inputs)
        loss = nn.functional.cross_entropy(logits, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
last_loss = loss.item()

correct = 0
with torch.no_grad():
    for inputs, targets in loader:
        logits = net(inputs)
        correct += (logits.argmax(1) == targets).sum().item()
print("FINAL", round(last_loss, 6), correct, sum(p.abs().sum().item() for p in net.parameters()))
