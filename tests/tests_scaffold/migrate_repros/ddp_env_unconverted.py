"""DDP set-up chosen from the environment around a loop the converter cannot take over."""

import os

import torch
import torch.nn as nn
from torch.distributed import destroy_process_group, init_process_group
from torch.nn.parallel import DistributedDataParallel as DDP

torch.manual_seed(0)
ddp = int(os.environ.get("RANK", -1)) != -1
if ddp:
    init_process_group(backend="gloo")
net = nn.Linear(4, 1)
if ddp:
    net = DDP(net)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
it = 0
while it < 5:
    x, y = torch.randn(4, 4), torch.randn(4, 1)
    loss = nn.functional.mse_loss(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    it += 1
if ddp:
    destroy_process_group()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
