"""`return` inside the batch loop (early stopping by steps without improvement, as text-CNN
scripts write it): the Trainer must stop after that batch, draw no further batch, skip the rest
of that epoch and the code after the loop, and the function must return the value as it was
when the script returned."""

import torch
import torch.nn as nn


def train(loader, net, epochs, patience):
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    steps, best, last_best, epoch_ends = 0, float("inf"), 0, 0
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            optimizer.step()
            steps += 1
            if loss.item() < best - 1e-3:
                best, last_best = loss.item(), steps
            elif steps - last_best >= patience:
                print("early stop at step", steps)
                return best, steps
        epoch_ends += 1  # never counted for the epoch that returned
        print("epoch", epoch, "ends", epoch_ends)
    print("trained every epoch")
    return best, -1


torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
net = nn.Linear(3, 1)
best, steps = train(loader, net, 50, patience=6)
after = torch.rand(1).item()  # the random state: no batch was drawn after the return
print("FINAL", round(best, 6), steps, round(after, 6), round(net.weight.sum().item(), 6))
