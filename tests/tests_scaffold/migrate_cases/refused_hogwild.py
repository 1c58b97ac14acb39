import torch
import torch.multiprocessing as mp
from torch import nn


def train(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x in [torch.randn(4, 2)]:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()


if __name__ == "__main__":
    model = nn.Linear(2, 1)
    model.share_memory()
    processes = [mp.Process(target=train, args=(model,)) for _ in range(2)]
