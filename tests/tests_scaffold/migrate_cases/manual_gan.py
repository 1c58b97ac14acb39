import torch
from torch import nn

gen, disc = nn.Linear(4, 8), nn.Linear(8, 1)
opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
loader = torch.utils.data.DataLoader(torch.randn(64, 8), batch_size=16)
for epoch in range(2):
    for real in loader:
        opt_d.zero_grad()
        fake = gen(torch.randn(len(real), 4))
        d_loss = disc(real).mean() - disc(fake.detach()).mean()
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = disc(fake).mean()
        g_loss.backward()
        opt_g.step()
