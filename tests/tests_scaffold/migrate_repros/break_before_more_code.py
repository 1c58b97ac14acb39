"""`break` in the middle of the batch loop and of the epoch loop, with code after it, and a
scheduler stepped after the epoch's `break` (not stepped in the stopping epoch)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6
)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
history = []
for epoch in range(6):
    for i, (x, y) in enumerate(loader):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
        if epoch == 3 and i == 2:
            print("stop inside")
            break
        history.append(round(loss.item(), 5))
    history.append(epoch)
    if loss.item() < 0.86:  # converged
        break
    scheduler.step()
print("FINAL", optimizer.param_groups[0]["lr"], history, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
