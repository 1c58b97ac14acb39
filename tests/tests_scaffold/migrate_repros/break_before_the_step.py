"""`break` before the optimizer step under automatic optimization: the Trainer would step on the
batch that breaks (the loss of that iteration is never computed), so it is refused."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(40, 3), torch.randn(40, 1)), batch_size=8
)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(3):
    for i, (x, y) in enumerate(loader):
        if i == 3:
            break
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
    print(epoch, loss.item())
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6))
