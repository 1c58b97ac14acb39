"""A from-scratch course shape: the update is a function of the script, `sgd(params, lr, n)`,
doing `param -= lr * param.grad / n` and zeroing each gradient under `torch.no_grad()`, called
once per minibatch with the script's own tensors; minibatches come from a generator, a fresh
one each epoch. The call becomes the step of an optimizer over `[w, b]`."""

import random

import torch

random.seed(1)
torch.manual_seed(1)
features = torch.randn(150, 3)
labels = features @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3


def minibatches(size):
    order = list(range(len(features)))
    random.shuffle(order)
    for start in range(0, len(order), size):
        pick = torch.tensor(order[start : start + size])
        yield features[pick], labels[pick]


def sgd(params, lr, n):
    """Minibatch stochastic gradient descent."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / n
            param.grad.zero_()


w = torch.normal(0, 0.01, size=(3, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)
lr, batch = 0.1, 16
for epoch in range(4):
    for x, y in minibatches(batch):
        loss = ((x @ w + b - y) ** 2 / 2).sum()
        loss.backward()
        sgd([w, b], lr, batch)
    print(epoch, loss.item())
print("FINAL", [round(v, 6) for v in w.flatten().tolist()], round(b.item(), 6))
