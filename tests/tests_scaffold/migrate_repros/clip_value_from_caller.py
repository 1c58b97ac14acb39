"""A training function clipping at its parameter `grad_clip`, called once per epoch with
`args.grad_clip` (keon/seq2seq's train()): the Trainer reads `args.grad_clip`, and where the call
passes a value that changes from epoch to epoch the clipping stays in the step."""

import argparse

import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_

parser = argparse.ArgumentParser()
parser.add_argument("--grad-clip", type=float, default=0.05)
parser.add_argument("--epochs", type=int, default=3)


def train(e, model, optimizer, loader, grad_clip):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        total += loss.item()
    return total


def main():
    args = parser.parse_args([])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8
    )
    totals = []
    for e in range(1, args.epochs + 1):
        totals.append(round(train(e, model, optimizer, loader, args.grad_clip), 6))
    print("FINAL", totals, sum(p.abs().sum().item() for p in model.parameters()))


if __name__ == "__main__":
    main()
