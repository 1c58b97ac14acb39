"""The epoch loop reseeds torch before drawing its shuffled batches."""

import torch
torch.manual_seed(0)
net = torch.nn.Linear(3, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 3), torch.randn(16, 1)), batch_size=4, shuffle=True)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(3):
    torch.manual_seed(100 + epoch)
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
