"""Early stopping with a hand-written patience counter and a best-model copy."""

import copy

import torch
from torch import nn

torch.manual_seed(7)
features = torch.randn(400, 5)
labels = (features[:, :2].sum(dim=1) > 0).float().unsqueeze(1)
train_set = torch.utils.data.TensorDataset(features[:300], labels[:300])
val_x, val_y = features[300:], labels[300:]
train_loader = torch.utils.data.DataLoader(train_set, batch_size=25, shuffle=True)

model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
loss_fn = nn.BCEWithLogitsLoss()
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01)

best_val = float("inf")
best_state = None
bad_epochs = 0
patience = 2
for epoch in range(50):
    model.train()
    for batch_x, batch_y in train_loader:
        optimizer.zero_grad()
        loss = loss_fn(model(batch_x), batch_y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = loss_fn(model(val_x), val_y).item()
    if val_loss < best_val - 1e-3:
        best_val, bad_epochs = val_loss, 0
        best_state = copy.deepcopy(model.state_dict())
    else:
        bad_epochs += 1
    if bad_epochs >= patience:
        print(f"stopping at epoch {epoch}")
        break

model.load_state_dict(best_state)
print(f"FINAL {best_val:.8f} epochs={epoch}")
