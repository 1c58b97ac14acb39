"""nn.DataParallel with a trailing comment, unconditional."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 1)
net = nn.DataParallel(net)  # every visible GPU
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(8, 4), torch.randn(8, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in net.module.parameters()))
