"""A step-based schedule: train until a fixed number of optimizer steps, across epochs."""
import torch
from torch import nn

torch.manual_seed(8)
max_steps = 50
dataset = torch.utils.data.TensorDataset(torch.randn(120, 4), torch.randn(120, 2))
loader = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True)
model = nn.Linear(4, 2)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
global_step = 0
done = False
while not done:
    for features, targets in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(features), targets)
        loss.backward()
        optimizer.step()
        global_step += 1
        if global_step % 20 == 0:
            print(f"step {global_step}: {loss.item():.5f}")
        if global_step >= max_steps:
            done = True
            break
print(f"FINAL {loss.item():.8f} steps={global_step}")
