"""Two training phases one after the other at module level: pre-training with one optimizer,
then fine-tuning the same network with a new optimizer and a lower learning rate."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
data = TensorDataset(torch.randn(48, 4), torch.randn(48, 1))
loader = DataLoader(data, batch_size=8, shuffle=True)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

# phase 1: pre-training
optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
    print("pretrain", epoch, round(loss.item(), 6))

# phase 2: fine-tune the head only
for p in net[0].parameters():
    p.requires_grad_(False)
head_opt = torch.optim.Adam(net[2].parameters(), lr=0.01)
for epoch in range(2):
    for x, y in loader:
        head_opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        head_opt.step()
print("FINAL", round(loss.item(), 6), round(sum(p.abs().sum().item() for p in net.parameters()), 6))
