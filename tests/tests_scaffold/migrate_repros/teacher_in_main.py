"""Distillation in main(): the hooks read a teacher network that the script keeps in eval mode.
Handed to the LightningModule as a submodule, the Trainer's train() would switch its dropout on;
the class stays inside main() and reads the teacher as the script did."""

import torch
from torch import nn


def main():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 2))
    teacher.eval()
    student = nn.Linear(4, 2)
    data = torch.utils.data.TensorDataset(torch.randn(24, 4))
    loader = torch.utils.data.DataLoader(data, batch_size=6)
    opt = torch.optim.SGD(student.parameters(), lr=0.2)
    for epoch in range(2):
        for (x,) in loader:
            opt.zero_grad()
            with torch.no_grad():
                target = teacher(x)
            loss = nn.functional.mse_loss(student(x), target)
            loss.backward()
            opt.step()
    print("FINAL", round(student.weight.sum().item(), 6), round(loss.item(), 6))


if __name__ == "__main__":
    main()
