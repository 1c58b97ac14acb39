"""Per-layer learning rates as parameter groups grown one statement at a time, built by a helper
the caller uses, the optimizer handed to a training function (the shape of
jindongwang/transferlearning's feature extractor): the optimizer trains the model it is passed."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
DEVICE = torch.device("cpu")


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.base_network = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.classifier_layer = nn.Linear(8, 3)

    def forward(self, x):
        return self.classifier_layer(self.base_network(x))

    def get_parameters(self, lr):
        params = [{"params": self.base_network.parameters(), "lr": 0.1 * lr}]
        params.append({"params": self.classifier_layer.parameters(), "lr": lr})
        return params


def get_optimizer(model):
    learning_rate = 0.05
    param_group = []
    param_group += [{"params": model.base_network.parameters(), "lr": learning_rate}]
    param_group += [{"params": model.classifier_layer.parameters(), "lr": learning_rate * 10}]
    optimizer = torch.optim.SGD(param_group, momentum=0.9)
    return optimizer


def finetune(model, loader, optimizer, criterion, n_epoch=3):
    history = []
    for epoch in range(1, n_epoch + 1):
        model.train()
        total = 0.0
        for inputs, labels in loader:
            inputs, labels = inputs.to(DEVICE), labels.to(DEVICE)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            total += loss.item()
        history.append(round(total, 6))
    return history


def main():
    data = TensorDataset(torch.randn(40, 4), torch.randint(0, 3, (40,)))
    loader = DataLoader(data, batch_size=8, shuffle=True)
    net = Network().to(DEVICE)
    optimizer = get_optimizer(net)
    history = finetune(net, loader, optimizer, nn.CrossEntropyLoss())
    # then a second model, its groups from its own method
    net2 = Network().to(DEVICE)
    optimizer2 = torch.optim.SGD(net2.get_parameters(0.05), lr=0.05, momentum=0.9)
    history2 = finetune(net2, loader, optimizer2, nn.CrossEntropyLoss(), n_epoch=2)
    print("FINAL", history, history2, sum(p.abs().sum().item() for p in [*net.parameters(), *net2.parameters()]))


if __name__ == "__main__":
    main()
