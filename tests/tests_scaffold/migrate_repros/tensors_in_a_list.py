"""Linear regression from scratch (the d2l/tutorial shape): the optimizer trains two plain
tensors made to require grad, `SGD([w, b])`; a generator yields the minibatches; the script's
functions read `w` and `b` as globals. No module exists to hand the Trainer: the module holds
none and its optimizer trains the very same tensor objects."""

import random

import torch

random.seed(0)
torch.manual_seed(0)

true_w = torch.tensor([2.0, -3.4])
features = torch.normal(0, 1, (120, 2))
labels = (features @ true_w + 4.2 + torch.normal(0, 0.01, (120,))).reshape(-1, 1)


def batches(size):
    order = list(range(len(features)))
    random.shuffle(order)
    for i in range(0, len(order), size):
        idx = torch.tensor(order[i : i + size])
        yield features[idx], labels[idx]


w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = torch.zeros(1, requires_grad=True)


def linreg(x):
    return x @ w + b


optimizer = torch.optim.SGD([w, b], lr=0.05, momentum=0.5)
for epoch in range(3):
    for x, y in batches(10):
        loss = ((linreg(x) - y) ** 2 / 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        print(f"epoch {epoch + 1}, loss {float(((linreg(features) - labels) ** 2).mean()):f}")

print("FINAL", [round(v, 6) for v in w.flatten().tolist()], round(b.item(), 6))
