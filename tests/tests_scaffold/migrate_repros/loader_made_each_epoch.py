"""The epoch loop builds its DataLoader anew each epoch through a helper (a shuffled loader,
wrapped in `enumerate(..., 1)` and a tqdm bar) and the batch loop reads the loader (`len(...)`)
too. on_train_epoch_start builds them as the script did, and the Trainer iterates over the
epoch's own bar; the shuffle draws its order when the epoch's first batch is drawn, as in the
script, after the epoch's other random draws."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

torch.manual_seed(0)
data = TensorDataset(torch.randn(48, 5), torch.randn(48, 1))


def make_loader(dataset, batch_size):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(1, 4):
    noise = torch.randn(1).item() * 0.01  # a random draw before the loader's shuffle
    loader = make_loader(data, 12)
    bar = tqdm(enumerate(loader, 1), disable=True)
    for i, (x, y) in bar:
        loss = nn.functional.mse_loss(model(x + noise), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_description(f"epoch {epoch} batch {i}/{len(loader)}")
    print(epoch, loss.item())

print("FINAL", round(sum(p.sum().item() for p in model.parameters()), 6), round(loss.item(), 6))
