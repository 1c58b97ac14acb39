"""One pass over a dict-batch dataset at module level, model.zero_grad(), clip by value."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


class PairDataset(Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(11)
        self.features = torch.randn(n, 6, generator=g)
        self.targets = self.features.sum(dim=1, keepdim=True)

    def __len__(self):
        return len(self.features)

    def __getitem__(self, i):
        return {"features": self.features[i], "target": self.targets[i]}


torch.manual_seed(5)
model = nn.Linear(6, 1)
opt = torch.optim.Adam(model.parameters(), lr=0.05)
loader = DataLoader(PairDataset(200), batch_size=10, shuffle=True)
seen = 0
for batch in tqdm(loader, disable=True):
    model.zero_grad()
    pred = model(batch["features"])
    loss = ((pred - batch["target"]) ** 2).mean()
    loss.backward()
    nn.utils.clip_grad_value_(model.parameters(), 0.5)
    opt.step()
    seen += len(pred)

print(f"seen {seen}")
print(f"FINAL {loss.item():.8f}")
