"""An encoder/decoder trained by one optimizer built from a `params` variable, epochs counted with
enumerate(range(...)), and `zero_grad(); backward(); step()` written on shared lines."""

import torch
import torch.nn as nn

torch.manual_seed(0)
enc, dec = nn.Linear(4, 3), nn.Linear(3, 1)
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.SGD(params, lr=0.1)
loader = torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.randn(12, 4), torch.randn(12, 1)), batch_size=4
)
seen = []
for idx, epoch in enumerate(range(1, 4)):
    for x, y in loader:
        opt.zero_grad(); loss = nn.functional.mse_loss(dec(enc(x)), y)  # fmt: skip
        loss.backward(); opt.step()  # fmt: skip
    seen.append((idx, epoch))
print("FINAL", seen, idx, epoch, sum(p.abs().sum().item() for p in params))
