"""An optimizer class of the script whose `step(self)` takes no closure at all: the Trainer steps
every optimizer with `step(closure=...)` (automatic and manual optimization alike), so the
migration failed when run. Refused (SCF333) with what to change."""

import torch
import torch.nn as nn


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


torch.manual_seed(0)
model = nn.Linear(4, 1)
opt = SignSGD(model.parameters(), lr=0.01)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(40, 4), torch.randn(40, 1)), batch_size=8
)
for epoch in range(3):
    for x, y in data:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
