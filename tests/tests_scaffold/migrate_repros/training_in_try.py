"""The whole training inside `try: ... except Exception: ... finally:` (pytorch-playground's
shape): the `finally` block reads the best accuracy the epochs kept."""

import torch
import torch.nn as nn

torch.manual_seed(0)
X, Y = torch.randn(24, 3), torch.randint(0, 2, (24,))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=6)
model = nn.Linear(3, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
best_acc = 0.0
try:
    for epoch in range(4):
        for data, target in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(data), target).backward()
            optimizer.step()
        with torch.no_grad():
            acc = (model(X).argmax(1) == Y).float().mean().item()
        if acc > best_acc:
            best_acc = acc
except Exception as e:
    print("failed", e)
finally:
    print("FINAL", round(best_acc, 6), round(sum(p.abs().sum().item() for p in model.parameters()), 6))
