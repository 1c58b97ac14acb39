"""`break` inside an `if` that is not the last statement of its block (the code after it must
not run in the stopping epoch)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randn(24, 1)), batch_size=6
)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
extra = 0
for epoch in range(5):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
    if epoch >= 1:
        if epoch == 2:
            break
        extra += 1
print("FINAL", extra, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
