"""A hand-written update (`p -= lr * p.grad`) whose learning rate the epoch loop halves. The
update would become the step of an optimizer object reading `lr` where it was built, while
the halving moves into a hook with the loop's other state: the step would keep the first
rate (this once converted and printed other numbers). Refused."""

import torch

torch.manual_seed(0)
x = torch.randn(40, 3)
y = x.sum(1, keepdim=True)
net = torch.nn.Linear(3, 1)
lr = 0.1
for epoch in range(4):
    for i in range(0, 40, 10):
        loss = ((net(x[i : i + 10]) - y[i : i + 10]) ** 2).mean()
        net.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                p -= lr * p.grad
    lr = lr * 0.5
print("FINAL", round(net.weight.sum().item(), 6))
