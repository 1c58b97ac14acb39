"""Only names imported from torch (no `import torch`); the device chosen at run time."""

from torch import cuda, manual_seed, nn, optim, randint, randn
from torch.utils import data as tud

manual_seed(0)
dev = "cuda" if cuda.is_available() else "cpu"
net = nn.Linear(4, 3).to(dev)
loader = tud.DataLoader(tud.TensorDataset(randn(9, 4), randint(0, 3, (9,))), batch_size=3)
opt = optim.Adam(net.parameters(), lr=0.01)
for epoch in range(2):
    for x, y in loader:
        x, y = x.to(dev), y.to(dev)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
print("FINAL", sum(p.abs().sum().item() for p in net.parameters()))
