"""Training and evaluation through one loop body, switching on the phase's name, in a function
called twice: fine-tuning the whole network, then training only its head on a frozen body
(the optimizer takes `net.head.parameters()`). Best weights are kept by validation accuracy."""

import copy

import torch
import torch.nn as nn
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
sets = {x: TensorDataset(torch.randn(40, 6), torch.randint(0, 3, (40,))) for x in ["train", "val"]}
loaders = {x: DataLoader(sets[x], batch_size=8, shuffle=(x == "train")) for x in ["train", "val"]}
sizes = {x: len(sets[x]) for x in ["train", "val"]}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(x))


def fit(model, criterion, optimizer, scheduler, num_epochs=3):
    best_wts = copy.deepcopy(model.state_dict())
    best_acc = 0.0
    for epoch in range(num_epochs):
        # each epoch trains, then evaluates
        for phase in ["train", "val"]:
            if phase == "train":
                model.train()
            else:
                model.eval()
            running_loss = 0.0
            running_corrects = 0
            for inputs, labels in loaders[phase]:
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    # update only while training
                    if phase == "train":
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()
            epoch_loss = running_loss / sizes[phase]
            epoch_acc = running_corrects.double() / sizes[phase]
            print(f"{phase} {epoch} loss {epoch_loss:.6f} acc {epoch_acc:.4f}")
            if phase == "val" and epoch_acc > best_acc:
                best_acc = epoch_acc
                best_wts = copy.deepcopy(model.state_dict())
    print("best", float(best_acc))
    model.load_state_dict(best_wts)
    return model


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
sched = lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
net = fit(net, criterion, optimizer, sched)

frozen = Net()
for p in frozen.body.parameters():
    p.requires_grad = False
head_optimizer = torch.optim.SGD(frozen.head.parameters(), lr=0.05, momentum=0.9)
head_sched = lr_scheduler.StepLR(head_optimizer, step_size=1, gamma=0.9)
frozen = fit(frozen, criterion, head_optimizer, head_sched, num_epochs=2)
total = sum(p.abs().sum().item() for p in [*net.parameters(), *frozen.parameters()])
print("FINAL", round(total, 5))
