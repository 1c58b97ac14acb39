"""The model's own method runs backward(); the loop around it steps the optimizer."""

import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(x)

    def backprop(self, x, y):
        loss = nn.functional.mse_loss(self(x), y)
        loss.backward()
        return loss


torch.manual_seed(0)
net = Net()
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=4
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(2):
    for x, y in loader:
        opt.zero_grad()
        net.backprop(x, y)
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
