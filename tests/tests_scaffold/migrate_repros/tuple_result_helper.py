"""A per-epoch train() helper whose result is unpacked (`loss, n = train(...)`, bearpaw and
efficient_densenet's shape); its optimizer is the caller's."""

import torch

torch.manual_seed(0)
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(20, 3), torch.randn(20, 1)), batch_size=4
)


def train(loader, model, optimizer, epoch):
    total, n = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
        n += 1
    return total / n, n


history = []
for epoch in range(3):
    train_loss, batches = train(data, model, opt, epoch)
    history.append((round(train_loss, 6), batches))
    print(epoch, train_loss)
print("FINAL", history, model.weight.sum().item())
