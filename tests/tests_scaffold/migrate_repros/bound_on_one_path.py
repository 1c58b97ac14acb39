"""A timer bound on one branch only ahead of the loop (`if use_cuda: events else: t0 =
time.time()`, rasbt's LLMs-from-scratch), read and rebound in the loop on that branch only.
Run here on the path that leaves `t0` unbound: the migrated module must not read it then."""

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train(model, loader, optimizer, timed, epochs):
    if timed:
        t0 = time.time()
    else:
        marks = []
    step = -1
    for epoch in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            step += 1
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
            if step % 3 == 0:
                if timed:
                    elapsed = time.time() - t0
                    t0 = time.time()
                    assert elapsed >= 0
                else:
                    marks.append(step)
    return step, marks


torch.manual_seed(0)
x = torch.randn(40, 3)
loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4, shuffle=True)
net = nn.Linear(3, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.05)
steps, marks = train(net, loader, opt, False, 2)
print("FINAL", steps, marks, f"{sum(p.double().sum().item() for p in net.parameters()):.10f}")
