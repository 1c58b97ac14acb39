"""A per-epoch helper whose locals share names with the caller's epoch loop
(`train_loss, reg_loss, acc = train(epoch)`, mixup-cifar10's shape): one Trainer for all
epochs cannot take both over, one Trainer per call can."""

import torch
import torch.nn as nn

torch.manual_seed(0)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(24, 3), torch.randint(0, 2, (24,))), batch_size=6
)
net = nn.Linear(3, 2)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)


def train(epoch):
    train_loss, reg_loss, correct = 0.0, 0.0, 0
    for x, y in loader:
        out = net(x)
        loss = nn.functional.cross_entropy(out, y)
        reg = sum(p.pow(2).sum() for p in net.parameters()) * 1e-3
        optimizer.zero_grad()
        (loss + reg).backward()
        optimizer.step()
        train_loss += loss.item()
        reg_loss += reg.item()
        correct += (out.argmax(1) == y).sum().item()
    return train_loss, reg_loss, correct / 24


log = []
for epoch in range(3):
    train_loss, reg_loss, train_acc = train(epoch)
    log.append((round(train_loss, 6), round(reg_loss, 6), train_acc))
print("FINAL", log, round(sum(p.abs().sum().item() for p in net.parameters()), 6))
