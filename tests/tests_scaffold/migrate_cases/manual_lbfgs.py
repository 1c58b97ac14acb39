import torch
from torch import nn

model = nn.Linear(2, 1)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5)
x, y = torch.randn(16, 2), torch.randn(16, 1)
loader = [(x, y)]
for epoch in range(3):
    for inputs, targets in loader:

        def closure():
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            return loss

        optimizer.step(closure)
