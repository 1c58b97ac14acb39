"""`if <no improvement for long>: break` as the first statement of the epoch loop (the
captioning tutorials' `if epochs_since_improvement == 20: break`): the Trainer must stop before
that epoch draws anything (a shuffled loader draws random numbers when iterated), and none of
that epoch's code may run."""

import torch
import torch.nn as nn

torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(40, 3), torch.randn(40, 1))
loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
net = nn.Linear(3, 1)
optimizer = torch.optim.SGD(net.parameters(), lr=0.3)
best, since_improvement, ran = float("inf"), 0, 0
for epoch in range(100):
    if since_improvement == 2:
        break
    ran += 1
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    if total < best - 0.05:
        best, since_improvement = total, 0
    else:
        since_improvement += 1
    print("epoch", epoch, round(total, 6), since_improvement)
print("FINAL", epoch, ran, round(best, 6), round(torch.rand(1).item(), 6), round(net.weight.sum().item(), 6))
