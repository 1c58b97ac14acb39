"""Pytorch-UNet's update: a GradScaler that unscales before clipping (manual optimization,
the script's scaler kept), and a ReduceLROnPlateau stepped inside the batch loop every few
batches on a validation score (`scheduler.step(val_score)`: a scheduler's step with an
argument, not an optimizer's closure step)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
xs, ys = torch.randn(48, 4), torch.randint(0, 3, (48,))
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(xs[:40], ys[:40]), batch_size=4, shuffle=True
)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-2, momentum=0.9)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "max", patience=1, factor=0.5)
grad_scaler = torch.amp.GradScaler("cpu", enabled=True)
criterion = nn.CrossEntropyLoss()
global_step = 0


@torch.no_grad()
def evaluate(model):
    model.eval()
    score = (model(xs[40:]).argmax(1) == ys[40:]).float().mean().item()
    model.train()
    return score


for epoch in range(1, 4):
    net.train()
    for inputs, targets in loader:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = criterion(net(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        grad_scaler.scale(loss).backward()
        grad_scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        grad_scaler.step(optimizer)
        grad_scaler.update()
        global_step += 1
        if global_step % 3 == 0:
            val_score = evaluate(net)
            scheduler.step(val_score)
    print(epoch, optimizer.param_groups[0]["lr"])
print("FINAL", optimizer.param_groups[0]["lr"], round(sum(p.abs().sum().item() for p in net.parameters()), 6))
