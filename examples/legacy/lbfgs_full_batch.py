"""Full-batch LBFGS with a closure, as in curve-fitting tutorials (no DataLoader in the original)."""
import torch
from torch import nn

torch.manual_seed(5)
x = torch.linspace(-2, 2, 64).unsqueeze(1)
y = torch.sin(2 * x) + 0.05 * torch.randn_like(x)
model = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 1))
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=10)
criterion = nn.MSELoss()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
for epoch in range(5):
    for inputs, targets in loader:
        def closure():
            optimizer.zero_grad()
            loss = criterion(model(inputs), targets)
            loss.backward()
            return loss
        optimizer.step(closure)
    with torch.no_grad():
        print(f"epoch {epoch}: {criterion(model(x), y).item():.6f}")
print(f"FINAL {criterion(model(x), y).item():.8f}")
