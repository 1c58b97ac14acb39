"""DataParallel only on a multi-GPU machine, in a two-network script."""

import torch
import torch.nn as nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
gen, disc = nn.Linear(2, 4).to(device), nn.Linear(4, 1).to(device)
if device.type == "cuda" and torch.cuda.device_count() > 1:
    disc = nn.DataParallel(disc)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=4)
opt_d = torch.optim.SGD(disc.parameters(), lr=0.1)
opt_g = torch.optim.SGD(gen.parameters(), lr=0.1)
for epoch in range(2):
    for (real,) in loader:
        disc.zero_grad()
        (-disc(real).mean()).backward()
        fake = gen(torch.randn(4, 2))
        disc(fake.detach()).mean().backward()
        opt_d.step()
        gen.zero_grad()
        (-disc(fake).mean()).backward()
        opt_g.step()
print("FINAL", sum(p.abs().sum().item() for p in [*gen.parameters(), *disc.parameters()]))
