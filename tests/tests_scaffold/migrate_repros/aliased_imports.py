"""Library functions under other names, and a look-alike of the script's own.

`clip` is torch's clip_grad_norm_ (a Trainer setting); `clip_grad_norm_halved` only looks like
it and must stay where it is; `Warmup` is a torch scheduler imported under another name; the
loader is wrapped in `tqdm.tqdm` reached through `import tqdm`."""

import torch
import tqdm
from torch import nn
from torch.nn.utils import clip_grad_norm_ as clip
from torch.optim.lr_scheduler import LambdaLR as Warmup


def clip_grad_norm_halved(params, value):
    for p in params:
        p.grad.mul_(0.5)


torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
loader = torch.utils.data.DataLoader(data, batch_size=4)
opt = torch.optim.SGD(net.parameters(), lr=0.5)
warm = Warmup(opt, lambda e: 1.0 / (e + 1))
for epoch in range(3):
    for x, y in tqdm.tqdm(loader, disable=True):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        clip(net.parameters(), 0.05)
        opt.step()
    warm.step()

probe = torch.randn(16, 4)
print("FINAL", round(loss.item(), 6), round(net(probe).sum().item(), 6))
