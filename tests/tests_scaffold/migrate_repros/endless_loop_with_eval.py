"""makemore's shape: an endless `while True:` loop over an infinite sampler-backed loader
(`batch_loader.next()`), evaluation and a best-loss save every few steps, a timer, and a
`break` once the step count reaches the budget."""

import os
import tempfile
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class InfiniteDataLoader:
    def __init__(self, dataset, **kwargs):
        sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=int(1e10))
        self.train_loader = DataLoader(dataset, sampler=sampler, **kwargs)
        self.data_iter = iter(self.train_loader)

    def next(self):
        try:
            batch = next(self.data_iter)
        except StopIteration:
            self.data_iter = iter(self.train_loader)
            batch = next(self.data_iter)
        return batch


@torch.no_grad()
def evaluate(model, dataset, batch_size=10):
    model.eval()
    losses = [nn.functional.mse_loss(model(x), y).item() for x, y in DataLoader(dataset, batch_size)]
    model.train()
    return sum(losses) / len(losses)


torch.manual_seed(0)
xs = torch.randn(120, 5)
train_dataset = TensorDataset(xs[:100], xs[:100].sum(1, keepdim=True))
test_dataset = TensorDataset(xs[100:], xs[100:].sum(1, keepdim=True))
model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 1))
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01, betas=(0.9, 0.99))
batch_loader = InfiniteDataLoader(train_dataset, batch_size=8, pin_memory=False, num_workers=0)
work_dir = tempfile.mkdtemp()
max_steps = 40

# training loop
best_loss = None
step = 0
while True:
    t0 = time.time()

    # get the next batch and unpack it to input and target
    X, Y = batch_loader.next()

    loss = nn.functional.mse_loss(model(X), Y)

    # calculate the gradient, update the weights
    model.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    t1 = time.time()

    if step % 10 == 0:
        print(f"step {step} | loss {loss.item():.4f} | step time {(t1 - t0) * 1000:.2f}ms")

    # evaluate the model
    if step > 0 and step % 15 == 0:
        test_loss = evaluate(model, test_dataset)
        if best_loss is None or test_loss < best_loss:
            torch.save(model.state_dict(), os.path.join(work_dir, "model.pt"))
            best_loss = test_loss

    step += 1
    # termination conditions
    if max_steps >= 0 and step >= max_steps:
        break

best = torch.load(os.path.join(work_dir, "model.pt"))
print("FINAL", step, f"{best_loss:.8f}", f"{sum(p.double().sum().item() for p in model.parameters()):.10f}",
      f"{sum(v.double().sum().item() for v in best.values()):.10f}")
