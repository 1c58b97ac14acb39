"""Gradient accumulation whose count grows every epoch (`accum = epoch + 1`, bound before the
loop too): mapped to Trainer(accumulate_grad_batches=accum), read once, it accumulated over the
first count all run long (exit 0, other numbers). The `if` stays in the step."""

import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
)
accum = 1
for epoch in range(3):
    accum = epoch + 1
    for i, (x, y) in enumerate(data):
        loss = nn.functional.mse_loss(model(x), y) / accum
        loss.backward()
        if (i + 1) % accum == 0:
            opt.step()
            opt.zero_grad()
print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
