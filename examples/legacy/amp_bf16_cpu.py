"""Mixed precision the torch.amp way: bf16 autocast on the CPU, a GradScaler that is disabled there."""
import torch
from torch import nn

torch.manual_seed(12)
device = torch.device("cpu")
use_scaler = device.type == "cuda"
model = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 4)).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
x = torch.randn(256, 16)
y = (x[:, :4] * 3).softmax(dim=1).argmax(dim=1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
for epoch in range(3):
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # forward in bf16
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        scaler.step(optimizer)
        scaler.update()
    print(f"epoch {epoch} loss {loss.item():.4f}")
with torch.no_grad():
    final = nn.functional.cross_entropy(model(x), y).item()
print(f"FINAL {final:.8f}")
