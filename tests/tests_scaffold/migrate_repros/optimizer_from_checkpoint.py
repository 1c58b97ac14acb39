"""The model and its optimizer come from one branch or the other: built fresh, or both loaded
from a checkpoint (sgrvinod's tutorials): the pair loaded together trains together."""

import torch
import torch.nn as nn

torch.manual_seed(0)
checkpoint = None
if checkpoint is None:
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(
        params=filter(lambda p: p.requires_grad, model.parameters()), lr=0.01
    )
    start_epoch = 0
else:
    checkpoint = torch.load(checkpoint)
    start_epoch = checkpoint["epoch"] + 1
    model = checkpoint["model"]
    optimizer = checkpoint["optimizer"]
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(40, 3), torch.randn(40, 1)),
    batch_size=8,
    shuffle=True,
)
for epoch in range(start_epoch, 3):
    model.train()
    for x, y in loader:
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.save({"epoch": epoch, "model": model, "optimizer": optimizer}, "checkpoint.pth")
model.eval()
print("FINAL", round(model(torch.ones(2, 3)).sum().item(), 6))
