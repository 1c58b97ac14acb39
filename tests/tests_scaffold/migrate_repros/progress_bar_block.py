"""The batch loop inside a `with tqdm(total=...) as pbar:` block sized in samples (the
Pytorch-UNet shape), with a random flip per batch, a scheduler on the epoch's mean loss and a
bar updated by the batch's sample count."""

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm as progress

torch.manual_seed(0)
images = torch.randn(48, 1, 6, 6)
masks = (images > 0.2).float()
train_set = TensorDataset(images, masks)
loader = DataLoader(train_set, batch_size=6, shuffle=True)
net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))
optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-3, momentum=0.9)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", patience=1)
criterion = nn.BCEWithLogitsLoss()
global_step = 0

for epoch in range(1, 4):
    net.train()
    epoch_loss = 0.0
    with progress(total=len(train_set), desc=f"Epoch {epoch}/3", unit="img", disable=True) as pbar:
        for batch_images, batch_masks in loader:
            if torch.rand(1).item() < 0.5:  # random horizontal flip
                batch_images, batch_masks = batch_images.flip(-1), batch_masks.flip(-1)
            loss = criterion(net(batch_images), batch_masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            pbar.update(batch_images.shape[0])
            global_step += 1
            epoch_loss += loss.item()
            pbar.set_postfix(**{"loss (batch)": loss.item()})
    scheduler.step(epoch_loss / len(loader))
    print(f"epoch {epoch} steps {global_step} loss {epoch_loss:.6f}")

print("FINAL", f"{sum(p.double().sum().item() for p in net.parameters()):.10f}", global_step)
