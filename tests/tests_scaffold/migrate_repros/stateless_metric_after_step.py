"""A metric helper called after the optimizer step (`accuracy(logits, labels, topk=(1, 3))`,
sthalles/SimCLR's shape) reads only its arguments, so automatic optimization is exact; a second
helper reads the global model after the step (the updated weights), which only manual
optimization keeps."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def accuracy(output, target, topk=(1,)):
    with torch.no_grad():
        maxk = max(topk)
        _, pred = output.topk(maxk, 1, True, True)
        correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
        return [correct[:k].reshape(-1).float().sum(0) * 100.0 / target.size(0) for k in topk]


def weight_norm():
    return model[0].weight.norm().item()


torch.manual_seed(0)
x, y = torch.randn(60, 6), torch.randint(0, 5, (60,))
loader = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=True)
model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 5))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()
n_iter, norms = 0, []
for epoch in range(3):
    for inputs, labels in loader:
        logits = model(inputs)
        loss = criterion(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if n_iter % 2 == 0:
            top1, top3 = accuracy(logits, labels, topk=(1, 3))
            print(f"{n_iter} {top1.item():.2f} {top3.item():.2f}")
        n_iter += 1
    norms.append(round(weight_norm(), 6))
print("FINAL", norms, f"{sum(p.double().sum().item() for p in model.parameters()):.10f}")
