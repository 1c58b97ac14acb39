"""Validation written inline in the epoch loop (no helper), feeding ReduceLROnPlateau; a probe
forward pass after validation still runs in eval mode."""

import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(300, 8)
y = x[:, :2].sum(1, keepdim=True) + 0.1 * torch.randn(300, 1)
train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:240], y[:240]), batch_size=16, shuffle=True)
val_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[240:], y[240:]), batch_size=20)
model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
history = []
for epoch in range(6):
    model.train()
    train_loss = 0.0
    for inputs, targets in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        loss.backward()
        optimizer.step()
        train_loss += loss.item()
    # validation
    model.eval()
    val_loss = 0.0
    with torch.no_grad():
        for inputs, targets in val_loader:
            outputs = model(inputs)
            val_loss += criterion(outputs, targets).item()
    val_loss /= len(val_loader)
    probe = model(x[:4]).sum().item()  # still in eval mode
    scheduler.step(val_loss)
    history.append(round(val_loss, 6))
    print(f"epoch {epoch} train {train_loss / len(train_loader):.4f} val {val_loss:.4f} probe {probe:.5f}")
print(f"FINAL {history[-1]:.8f} {model[0].weight.sum().item():.6f}")
