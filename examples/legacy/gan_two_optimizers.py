"""A small GAN: two networks, two optimizers, two backward passes per batch."""
import torch
from torch import nn

torch.manual_seed(31)
latent = 4
real_data = torch.randn(256, 2) * torch.tensor([0.5, 2.0]) + torch.tensor([1.0, -1.0])
loader = torch.utils.data.DataLoader(real_data, batch_size=32, shuffle=True)
generator = nn.Sequential(nn.Linear(latent, 16), nn.ReLU(), nn.Linear(16, 2))
discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
opt_g = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
for epoch in range(3):
    for real in loader:
        # (1) update the discriminator
        discriminator.zero_grad()
        noise = torch.randn(len(real), latent)
        fake = generator(noise)
        d_loss = bce(discriminator(real), torch.ones(len(real), 1)) + bce(
            discriminator(fake.detach()), torch.zeros(len(real), 1)
        )
        d_loss.backward()
        opt_d.step()
        # (2) update the generator
        generator.zero_grad()
        g_loss = bce(discriminator(fake), torch.ones(len(real), 1))
        g_loss.backward()
        opt_g.step()
    print(f"epoch {epoch}: d {d_loss.item():.4f} g {g_loss.item():.4f}")
with torch.no_grad():
    sample = generator(torch.randn(1000, latent))
print(f"FINAL {sample.mean().item():.8f}")
