"""Gradient accumulation over 4 batches, the loss divided by the number of steps."""
import torch
from torch import nn

torch.manual_seed(21)
accum_steps = 4
data = torch.utils.data.TensorDataset(torch.randn(192, 10), torch.randint(0, 2, (192,)))
loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
for epoch in range(2):
    for step, (inputs, labels) in enumerate(loader):
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss = loss / accum_steps  # average over the accumulated batches
        loss.backward()
        if (step + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
        if step % 8 == 0:
            print(f"epoch {epoch} step {step} loss {loss.item():.5f}")
with torch.no_grad():
    final = nn.functional.cross_entropy(model(data.tensors[0]), data.tensors[1]).item()
print(f"FINAL {final:.8f}")
