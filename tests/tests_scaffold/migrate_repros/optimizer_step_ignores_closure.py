"""An optimizer class of the script whose `step(self, closure=None)` never runs its closure (a
hand-written sign-SGD): the Trainer's automatic step runs training_step inside
`optimizer.step(closure)`, so nothing was trained and the run ended with other numbers
(exit 0). Manual optimization computes the gradients in the step itself."""

import torch
import torch.nn as nn


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr=0.01):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
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
