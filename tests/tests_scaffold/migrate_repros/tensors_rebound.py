"""The loop rebinds a trained tensor (`w = w.detach().requires_grad_()`): the optimizer keeps
stepping the first tensor while the script's functions read the new one. Which object a
configure_optimizers would see cannot be told statically: refused."""

import torch

torch.manual_seed(0)
x = torch.randn(32, 3)
y = x.sum(1, keepdim=True)
w = torch.zeros(3, 1, requires_grad=True)
optimizer = torch.optim.SGD([w], lr=0.1)
for epoch in range(5):
    for i in range(0, 32, 8):
        loss = ((x[i : i + 8] @ w - y[i : i + 8]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch == 2:
        w = w.detach().requires_grad_()
print("FINAL", [round(v, 6) for v in w.flatten().tolist()])
