"""A tqdm wrapper made each epoch as the iterable, a generator expression reusing the loop's names, a
learning rate decayed by hand at the epoch's end."""

import torch
import torch.nn as nn
from tqdm import tqdm

torch.manual_seed(0)
net = nn.Linear(4, 1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(12, 4), torch.randn(12, 1)), batch_size=4
)
lr = 0.1
opt = torch.optim.SGD(net.parameters(), lr=lr)
for epoch in range(3):
    pbar = tqdm(loader, desc=f"epoch {epoch}", disable=True)
    for xb, yb in pbar:
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(xb), yb)
        loss.backward()
        opt.step()
    val = sum(nn.functional.mse_loss(net(xb), yb).item() for xb, yb in loader)
    lr /= 10
    for group in opt.param_groups:
        group["lr"] = lr
print("FINAL", round(val, 6), sum(p.abs().sum().item() for p in net.parameters()))
