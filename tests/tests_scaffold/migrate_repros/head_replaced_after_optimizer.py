"""The model gets a new head after its optimizer was built (`model[2] = nn.Linear(...)`), so the
optimizer holds the old head's parameters and never trains the new one. Built again in
configure_optimizers it trained the new head (exit 0, other numbers); the optimizer the script
built is handed to the Trainer as it is."""

import torch
import torch.nn as nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
model[2] = nn.Linear(4, 1)  # a new head the optimizer does not hold
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
)
for epoch in range(2):
    for x, y in data:
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in model.parameters()))
