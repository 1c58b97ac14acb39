import torch
from torch import nn

model = nn.Linear(2, 1)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5)
data = torch.utils.data.TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
loader = torch.utils.data.DataLoader(data, batch_size=16)
for epoch in range(3):
    for inputs, targets in loader:
        def closure():
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(inputs), targets)
            loss.backward()
            return loss
        loss = optimizer.step(closure)
        print(epoch, loss.item())
