"""An autoencoder: labels ignored with `_`, model.train() inside the loop, weight decay."""
import torch
from torch import nn

torch.manual_seed(19)
data = torch.randn(160, 12) @ torch.randn(12, 12) * 0.3
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(data, torch.zeros(160)), batch_size=20, shuffle=True
)
autoencoder = nn.Sequential(nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 12))
optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=5e-3, weight_decay=1e-2)
for epoch in range(5):
    for batch, _ in loader:
        autoencoder.train()
        reconstruction = autoencoder(batch)
        loss = ((reconstruction - batch) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
autoencoder.eval()
with torch.no_grad():
    print(f"FINAL {((autoencoder(data) - data) ** 2).mean().item():.8f}")
