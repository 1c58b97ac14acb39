"""A WGAN whose critic is trained k times per generator step, in a `for _ in range(k):` loop
inside the loop that trains the generator, each critic pass drawing its own batch (the shape of
the generative-models collections): the outer loop is the training loop and the inner one stays
in training_step as written (manual optimization)."""

import torch
import torch.nn as nn

torch.manual_seed(0)
data = torch.randn(256, 2) * 0.5 + 1.0
G = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
D = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
G_solver = torch.optim.RMSprop(G.parameters(), lr=5e-3)
D_solver = torch.optim.RMSprop(D.parameters(), lr=5e-3)


def next_batch(n):
    return data[torch.randint(0, len(data), (n,))]


def reset_grad():
    G.zero_grad()
    D.zero_grad()


for it in range(30):
    for _ in range(3):
        X = next_batch(16)
        z = torch.randn(16, 3)
        D_loss = -(torch.mean(D(X)) - torch.mean(D(G(z))))
        D_loss.backward()
        D_solver.step()
        for p in D.parameters():
            p.data.clamp_(-0.1, 0.1)
        reset_grad()
    z = torch.randn(16, 3)
    G_loss = -torch.mean(D(G(z)))
    G_loss.backward()
    G_solver.step()
    reset_grad()
    if it % 10 == 0:
        print("iter", it, round(D_loss.item(), 6), round(G_loss.item(), 6))
total = sum(p.abs().sum().item() for m in (G, D) for p in m.parameters())
print("FINAL", round(total, 6), round(torch.rand(1).item(), 6))
