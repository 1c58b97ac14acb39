"""No optimizer object: the parameters are updated by hand under no_grad."""
import torch
from torch import nn

torch.manual_seed(17)
learning_rate = 0.05
w_true = torch.tensor([[2.0], [-3.0], [0.5]])
inputs = torch.randn(200, 3)
outputs = inputs @ w_true + 0.01 * torch.randn(200, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, outputs), batch_size=20, shuffle=True)
model = nn.Linear(3, 1)
for epoch in range(4):
    for xb, yb in loader:
        loss = ((model(xb) - yb) ** 2).mean()
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    print(f"epoch {epoch}: {loss.item():.6f}")
print(f"FINAL {model.weight.sum().item():.8f}")
