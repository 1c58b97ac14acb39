"""The "torch.nn from scratch" tutorial shape: weights made with `torch.randn(...) / sqrt(n)`
and `weights.requires_grad_()` on the next line, a model function reading them as globals, and
the update written by hand under `torch.no_grad()` (`weights -= weights.grad * lr`, then the
gradients zeroed). The update becomes the step of a small optimizer over those very tensors
(declared `global` in its step: an augmented assignment inside a method would bind a local)."""

import math

import torch
import torch.nn.functional as F

torch.manual_seed(0)
x_train = torch.randn(200, 20)
y_train = (x_train[:, :4].sum(1) > 0).long() + (x_train[:, 4] > 1).long()

weights = torch.randn(20, 3) / math.sqrt(20)
weights.requires_grad_()
bias = torch.zeros(3, requires_grad=True)


def model(xb):
    return xb @ weights + bias


lr = 0.5
bs = 32
n = len(x_train)
for epoch in range(3):
    for i in range((n - 1) // bs + 1):
        start_i = i * bs
        xb = x_train[start_i : start_i + bs]
        yb = y_train[start_i : start_i + bs]
        loss = F.cross_entropy(model(xb), yb)

        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
    print(epoch, loss.item())

print("FINAL", round(F.cross_entropy(model(x_train), y_train).item(), 6), round(weights.sum().item(), 6))
