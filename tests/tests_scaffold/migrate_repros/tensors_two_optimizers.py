"""A GAN written with bare weight tensors (the older research-code shape): two optimizers over
lists of tensors built by a helper returning `Variable(..., requires_grad=True)` and by
`.requires_grad_()`, a housekeeping helper that resets every gradient after each step, and the
weights read after the steps for a sample. Manual optimization keeps the script's order; the
module trains the script's own tensors."""

import torch
import torch.nn.functional as F
from torch.autograd import Variable

torch.manual_seed(0)
data = torch.rand(256, 8)
z_dim, h_dim = 4, 16


def init_weight(size):
    return Variable(torch.randn(*size) * (1.0 / (size[0] / 2.0) ** 0.5), requires_grad=True)


G_W1 = init_weight([z_dim, h_dim])
G_b1 = torch.zeros(h_dim).requires_grad_()
G_W2 = init_weight([h_dim, 8])
D_W1 = init_weight([8, h_dim])
D_b1 = torch.zeros(h_dim).requires_grad_()
D_W2 = init_weight([h_dim, 1])

G_params = [G_W1, G_b1, G_W2]
D_params = [D_W1, D_b1, D_W2]
params = G_params + D_params


def G(z):
    return torch.sigmoid(F.relu(z @ G_W1 + G_b1) @ G_W2)


def D(x):
    return torch.sigmoid(F.relu(x @ D_W1 + D_b1) @ D_W2)


def reset_grad():
    for p in params:
        if p.grad is not None:
            p.grad = torch.zeros_like(p.grad)


G_solver = torch.optim.Adam(G_params, lr=1e-3)
D_solver = torch.optim.Adam(D_params, lr=1e-3)
ones, zeros = torch.ones(32, 1), torch.zeros(32, 1)

for it in range(40):
    x = data[torch.randint(0, len(data), (32,))]
    d_loss = F.binary_cross_entropy(D(x), ones) + F.binary_cross_entropy(
        D(G(torch.randn(32, z_dim))), zeros
    )
    d_loss.backward()
    D_solver.step()
    reset_grad()

    g_loss = F.binary_cross_entropy(D(G(torch.randn(32, z_dim))), ones)
    g_loss.backward()
    G_solver.step()
    reset_grad()
    if it % 20 == 0:
        print(it, d_loss.item(), g_loss.item(), G(torch.randn(2, z_dim)).mean().item())

print("FINAL", round(sum(p.sum().item() for p in params), 5))
