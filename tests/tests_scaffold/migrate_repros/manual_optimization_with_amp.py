"""Mixed precision written by hand (autocast + GradScaler) in a loop that needs manual
optimization (the optimizer is zeroed after the step and the weights are read after it)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
use_amp = torch.cuda.is_available()
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 3), torch.randint(0, 2, (32,))),
    batch_size=8,
    shuffle=True,
)
net = nn.Linear(3, 2)
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
scaler = torch.cuda.amp.GradScaler(enabled=use_amp)
criterion = nn.CrossEntropyLoss()


def report(i, n, text):
    if i == n - 1:
        print(text)


for epoch in range(3):
    net.train()
    correct = 0
    for batch_idx, (inputs, targets) in enumerate(loader):
        with torch.cuda.amp.autocast(enabled=use_amp):
            outputs = net(inputs)
            loss = criterion(outputs, targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        correct += outputs.argmax(1).eq(targets).sum().item()
        report(batch_idx, len(loader), "acc %d norm %.6f" % (correct, net.weight.norm().item()))
print("FINAL", round(sum(p.abs().sum().item() for p in net.parameters()), 6))
