"""The epoch's learning rate is read after the batch loop, before the scheduler steps: the step
stays where the script has it (the Trainer steps an epoch scheduler right after the last batch,
before the code that follows the batch loop)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6
)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
lrs = []
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    lrs.append(optimizer.param_groups[0]["lr"])
    scheduler.step()
print("FINAL", lrs, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
