"""Full-batch LBFGS with the closure defined in the loop (`def closure(): ...;
optimizer.step(closure)`) and an evaluation after every step (the pytorch/examples time-series
shape). The closure cannot become training_step (the evaluation would then run inside the
closure, several times per step): manual optimization keeps the closure and hands it to the
Trainer's optimizer wrapper, which calls it as LBFGS did."""

import torch
from torch import nn

torch.manual_seed(0)
t = torch.linspace(0, 6.28, 64).unsqueeze(1)
inputs = torch.cat([torch.sin(t), torch.cos(t)], 1).double()
target = torch.sin(2 * t).double()
test_inputs, test_target = inputs[::7], target[::7]

model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).double()
criterion = nn.MSELoss()
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5)
for step in range(4):
    print("STEP", step)

    def closure():
        optimizer.zero_grad()
        loss = criterion(model(inputs), target)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        test_loss = criterion(model(test_inputs), test_target)
        print("test loss", test_loss.item())

print("FINAL", round(test_loss.item(), 10), round(sum(p.sum().item() for p in model.parameters()), 8))
