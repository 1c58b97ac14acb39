"""A GAN whose generator steps only every second batch (`if i % n_gen == 0`)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
gen, disc = nn.Linear(2, 4), nn.Linear(4, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4)), batch_size=4)
opt_g = torch.optim.SGD(gen.parameters(), lr=0.1)
opt_d = torch.optim.SGD(disc.parameters(), lr=0.1)
n_gen = 2
for epoch in range(2):
    for i, (real,) in enumerate(loader):
        opt_d.zero_grad()
        z = torch.randn(4, 2)
        d_loss = -disc(real).mean() + disc(gen(z).detach()).mean()
        d_loss.backward()
        opt_d.step()
        for p in disc.parameters():
            p.data.clamp_(-0.5, 0.5)
        opt_g.zero_grad()
        if i % n_gen == 0:
            g_loss = -disc(gen(z)).mean()
            g_loss.backward()
            opt_g.step()
print("FINAL", sum(p.abs().sum().item() for p in [*gen.parameters(), *disc.parameters()]))
