"""train(epoch)/test() functions reading module globals, run under the __main__ guard."""
import torch
from torch import nn

torch.manual_seed(23)
train_data = torch.utils.data.TensorDataset(torch.randn(128, 6), torch.randint(0, 3, (128,)))
test_data = torch.utils.data.TensorDataset(torch.randn(64, 6), torch.randint(0, 3, (64,)))
train_loader = torch.utils.data.DataLoader(train_data, batch_size=16, shuffle=True)
test_loader = torch.utils.data.DataLoader(test_data, batch_size=32)
model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
criterion = nn.CrossEntropyLoss()
log_interval = 3


def train(epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        optimizer.zero_grad()
        output = model(data)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}] Loss: {loss.item():.6f}")


def test():
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            correct += (model(data).argmax(dim=1) == target).sum().item()
    return correct / len(test_loader.dataset)


if __name__ == "__main__":
    for epoch in range(1, 4):
        train(epoch)
        accuracy = test()
        print(f"epoch {epoch} accuracy {accuracy:.4f}")
    print(f"FINAL {accuracy:.8f}")
