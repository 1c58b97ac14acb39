"""Gradient accumulation over 2 batches with 3 batches per epoch, stepping on `(i + 1) % 2 == 0`
alone: the third batch's gradients carry into the next epoch. Mapped to
Trainer(accumulate_grad_batches=2), which also steps on the last batch of each epoch, it computed
other numbers with exit 0; manual optimization keeps the script's own `if`."""

import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 4), torch.randn(24, 1)), batch_size=8
)
for epoch in range(3):
    for i, (x, y) in enumerate(data):
        loss = nn.functional.mse_loss(model(x), y) / 2
        loss.backward()
        if (i + 1) % 2 == 0:
            opt.step()
            opt.zero_grad()
print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
