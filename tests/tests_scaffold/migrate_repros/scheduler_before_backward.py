"""A per-batch scheduler stepped ahead of the forward/backward pass (the order of the
outlier-exposure baselines): each batch trains with the learning rate after its own step."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
loader = DataLoader(TensorDataset(torch.randn(48, 4), torch.randint(0, 2, (48,))), batch_size=8)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
optimizer = torch.optim.SGD(net.parameters(), lr=0.2, momentum=0.9, nesterov=True)
epochs = 3
total_steps = epochs * len(loader)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lr_lambda=lambda step: 0.5 * (1 + np.cos(step / total_steps * np.pi))
)


def train():
    net.train()
    loss_avg = 0.0
    for data, target in loader:
        x = net(data)
        scheduler.step()
        optimizer.zero_grad()
        loss = F.cross_entropy(x, target)
        loss.backward()
        optimizer.step()
        loss_avg = loss_avg * 0.8 + float(loss) * 0.2
    return loss_avg


for epoch in range(epochs):
    avg = train()
    print(epoch, round(avg, 6))
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6))
