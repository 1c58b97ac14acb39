"""A custom Dataset with 3-tuples, a criterion object, and the weights saved and reloaded."""
import os
import tempfile

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Triples(Dataset):
    def __init__(self, n=120):
        g = torch.Generator().manual_seed(3)
        self.x = torch.randn(n, 4, generator=g)
        self.w = torch.rand(n, generator=g)  # per-sample weights
        self.y = (self.x.sum(dim=1) > 0).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], self.w[i]


torch.manual_seed(1)
net = nn.Linear(4, 2)
criterion = nn.CrossEntropyLoss(reduction="none")
optim = torch.optim.Adam(net.parameters(), lr=0.02)
loader = DataLoader(Triples(), batch_size=12, shuffle=True)
for ep in range(3):
    for x, y, w in loader:
        optim.zero_grad()
        loss = (criterion(net(x), y) * w).mean()
        loss.backward()
        optim.step()
path = os.path.join(tempfile.mkdtemp(), "net.pt")
torch.save(net.state_dict(), path)
restored = nn.Linear(4, 2)
restored.load_state_dict(torch.load(path))
ds = Triples()
print(f"FINAL {(criterion(restored(ds.x), ds.y) * ds.w).mean().item():.8f}")
