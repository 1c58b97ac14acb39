"""A GAN trainer class (pytorch-wgan's shape): __init__ builds both networks and an optimizer
for each as attributes, train() loops over epochs and batches and steps both."""

import torch
import torch.nn as nn


class GAN:
    def __init__(self, epochs):
        self.G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
        self.D = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1), nn.Sigmoid())
        self.loss = nn.BCELoss()
        self.d_optimizer = torch.optim.Adam(self.D.parameters(), lr=0.001, betas=(0.5, 0.999))
        self.g_optimizer = torch.optim.Adam(self.G.parameters(), lr=0.001, betas=(0.5, 0.999))
        self.epochs = epochs
        self.batch_size = 8

    def train(self, loader):
        for epoch in range(self.epochs):
            for i, (real,) in enumerate(loader):
                ones = torch.ones(real.size(0))
                zeros = torch.zeros(real.size(0))
                d_loss = self.loss(self.D(real).flatten(), ones)
                fake = self.G(torch.randn(real.size(0), 4))
                d_loss = d_loss + self.loss(self.D(fake.detach()).flatten(), zeros)
                self.D.zero_grad()
                d_loss.backward()
                self.d_optimizer.step()

                g_loss = self.loss(self.D(self.G(torch.randn(real.size(0), 4))).flatten(), ones)
                self.G.zero_grad()
                g_loss.backward()
                self.g_optimizer.step()
            print("epoch", epoch, round(d_loss.item(), 4), round(g_loss.item(), 4))

    def save(self):
        return sum(p.abs().sum().item() for p in [*self.G.parameters(), *self.D.parameters()])


torch.manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(40, 6))
gan = GAN(epochs=3)
gan.train(torch.utils.data.DataLoader(data, batch_size=8, shuffle=True))
print("FINAL", round(gan.save(), 6))
