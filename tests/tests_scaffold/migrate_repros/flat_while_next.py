"""A flat `while True` loop drawing batches with next(it), restarting on StopIteration."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
it = iter(loader)
n = 0
while True:
    try:
        x, y = next(it)
    except StopIteration:
        it = iter(loader)
        x, y = next(it)
    loss = nn.functional.mse_loss(net(x), y)
    net.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    n += 1
    if n >= 7:
        break
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
