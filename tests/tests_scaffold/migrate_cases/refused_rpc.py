import torch
import torch.distributed.rpc as rpc
from torch import nn

model = nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(2):
    for x in [torch.randn(4, 2)]:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
