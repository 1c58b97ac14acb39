"""An endless `while True:` batch loop inside an epoch loop, over an iterator made each epoch
(`it = iter(loader)`), stopped by a counter's `break` (the converter once crashed on it:
the per-epoch iterable and the stop-on-break wrapper both wrap the loader)."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x = torch.randn(48, 3)
loader = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4, shuffle=True)
model = nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    it = iter(loader)
    i = 0
    while True:
        inputs, labels = next(it)
        loss = nn.functional.mse_loss(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        i += 1
        if i == 4:
            break
    print(epoch, i)
print("FINAL", sum(p.sum().item() for p in model.parameters()))
