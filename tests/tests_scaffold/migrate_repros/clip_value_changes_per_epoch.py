"""The clipping threshold changes every epoch (`clip = 0.01 * (epoch + 1)` before the batch
loop) and was also bound before the loop: mapped to Trainer(gradient_clip_val=clip), read once,
it clipped every step at the first value (exit 0, other numbers). Clipping stays in the step."""

import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.5)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
)
clip = 1.0
for epoch in range(3):
    clip = 0.01 * (epoch + 1)
    for x, y in data:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
