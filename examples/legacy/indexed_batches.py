"""Indexed batches (batch[0], batch[1]), zero_grad after the step with set_to_none."""
import torch
from torch import nn

torch.manual_seed(14)
dataset = torch.utils.data.TensorDataset(torch.randn(150, 5), torch.randn(150, 1))
train_loader = torch.utils.data.DataLoader(dataset, batch_size=15, shuffle=True)
model = nn.Sequential(nn.Linear(5, 10), nn.Sigmoid(), nn.Linear(10, 1))
optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1)
optimizer.zero_grad()
for epoch in range(3):
    for batch_idx, batch in enumerate(train_loader):
        prediction = model(batch[0])
        loss = nn.functional.mse_loss(prediction, batch[1])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if batch_idx == len(train_loader) - 1:
            print(f"epoch {epoch} last batch loss {loss.item():.5f}")
print(f"FINAL {nn.functional.mse_loss(model(dataset.tensors[0]), dataset.tensors[1]).item():.8f}")
