"""A `while step < n:` loop whose body `continue`s past a batch: moving the test to the end
of each pass (as SCF026 does) would let the `continue` skip it. Refused (SCF330)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
step = 0
while step < 6:
    step += 1
    x, y = torch.randn(4, 4), torch.randn(4, 1)
    if step == 3:
        continue
    loss = nn.functional.mse_loss(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
print("FINAL", step, round(sum(p.sum().item() for p in net.parameters()), 6))
