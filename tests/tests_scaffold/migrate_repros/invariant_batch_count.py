"""The batch count recomputed each epoch to the same value (`num_batches = n // batch_size`,
PyTorch-Mini-Tutorials' shape), slicing tensors by a per-batch helper."""

import torch

torch.manual_seed(0)
model = torch.nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
trX, trY = torch.randn(20, 3), torch.randn(20, 1)
n, batch_size = len(trX), 4


def train(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


for i in range(3):
    cost = 0.0
    num_batches = n // batch_size
    for k in range(num_batches):
        start, end = k * batch_size, (k + 1) * batch_size
        cost += train(model, optimizer, trX[start:end], trY[start:end])
    print(i, cost / num_batches)
print("FINAL", model.weight.sum().item())
