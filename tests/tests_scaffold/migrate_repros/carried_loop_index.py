"""The training helper reads its own enumerate index, named `batch_idx`, after its loop (the
shape of facebookresearch/mixup-cifar10's train.py)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(4, 2)
train_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 4), torch.randint(0, 2, (24,))), batch_size=8
)
val_loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,))), batch_size=8
)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
best = 0.0
history = []


def train(epoch):
    net.train()
    running = 0.0
    for batch_idx, (x, y) in enumerate(train_loader):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        running += loss.item()
        history.append(running / (batch_idx + 1))
    return running / (batch_idx + 1)


def test(epoch):
    global best
    net.eval()
    correct = 0
    with torch.no_grad():
        for x, y in val_loader:
            correct += (net(x).argmax(1) == y).sum().item()
    acc = correct / 16
    if acc > best:
        best = acc
        print("new best", epoch, acc)


means = []
for epoch in range(3):
    mean = train(epoch)
    means.append(round(mean, 6))
    test(epoch)
print("FINAL", best, means, round(sum(history), 6), sum(p.abs().sum().item() for p in net.parameters()))
