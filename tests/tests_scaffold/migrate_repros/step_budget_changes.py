"""A step budget whose bound the epoch loop changes (`limit = 3 + epoch * 4`, bound to 2 before the
loop): mapped to Trainer(max_steps=limit), read once, it stopped after 2 steps (exit 0, other
numbers). The script's own break stops the run, as written."""

import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
)
steps = 0
limit = 2
for epoch in range(4):
    limit = 3 + epoch * 4
    for x, y in data:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        steps += 1
        if steps >= limit:
            break
print("FINAL", steps, sum(p.abs().sum().item() for p in model.parameters()))
