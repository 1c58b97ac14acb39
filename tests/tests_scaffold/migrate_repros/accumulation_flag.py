"""Gradient accumulation through a flag computed in the batch loop (`is_update_step = ...;
if is_update_step: optimizer.step(); optimizer.zero_grad()`), with the last, short group of
batches stepped too; the loss is divided in place before backward."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(44, 5), torch.randn(44, 1)), batch_size=4)
model = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
accumulation_steps = 3
for epoch in range(2):
    model.train()
    for batch_idx, (x, y) in enumerate(loader):
        loss = F.mse_loss(model(x), y)
        loss /= accumulation_steps
        loss.backward()
        is_update_step = ((batch_idx + 1) % accumulation_steps == 0) or (batch_idx + 1 == len(loader))
        if is_update_step:
            optimizer.step()
            optimizer.zero_grad()
print("FINAL", round(sum(p.abs().sum().item() for p in model.parameters()), 6))
