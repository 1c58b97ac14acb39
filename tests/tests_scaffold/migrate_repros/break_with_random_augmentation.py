"""A `break` after a few batches of each epoch, over a dataset whose items draw random noise
(as random crops and flips do): drawing one batch more than the script did moves the random
stream of every later epoch, dropout included."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(0)


class Jittered(Dataset):
    def __init__(self):
        self.x = torch.randn(40, 4)
        self.y = torch.randn(40, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.1 * torch.randn(4), self.y[i]


loader = DataLoader(Jittered(), batch_size=4, shuffle=True)
model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    for i, (x, y) in enumerate(loader):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            break
print("FINAL", round(sum(p.abs().sum().item() for p in model.parameters()), 6))
