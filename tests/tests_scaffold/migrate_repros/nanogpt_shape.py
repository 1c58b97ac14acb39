"""nanoGPT's train.py in miniature: the optimizer comes from the model's own
`configure_optimizers` (weight-decay groups over `self.named_parameters()`), an endless
`while True:` loop sets the learning rate by hand each iteration, evaluates now and then,
accumulates gradients over an inner micro-step loop with a GradScaler (disabled, as in fp32
runs), prefetches the next batch inside that loop, clips, steps, and stops on a `break`."""

import math

import torch
from torch import nn
from torch.nn import functional as F


class Tiny(nn.Module):
    def __init__(self, vocab=11, dim=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx, targets=None):
        logits = self.head(self.norm(self.emb(idx)))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        param_dict = {pn: p for pn, p in self.named_parameters() if p.requires_grad}
        decay = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay = [p for n, p in param_dict.items() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": nodecay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=betas)
        return optimizer


torch.manual_seed(1337)
data = torch.randint(0, 11, (500,))
block_size, batch_size, gradient_accumulation_steps = 6, 4, 3
learning_rate, min_lr, warmup_iters, max_iters, eval_interval = 6e-3, 6e-4, 3, 12, 5


def get_batch():
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    ratio = (it - warmup_iters) / (max_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


@torch.no_grad()
def estimate_loss():
    model.eval()
    losses = torch.stack([model(*get_batch())[1] for _ in range(3)])
    model.train()
    return losses.mean().item()


model = Tiny()
scaler = torch.amp.GradScaler("cpu", enabled=False)
optimizer = model.configure_optimizers(0.1, learning_rate, (0.9, 0.95))
X, Y = get_batch()
iter_num = 0
best_val_loss = 1e9
while True:
    lr = get_lr(iter_num)
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr
    if iter_num % eval_interval == 0:
        val = estimate_loss()
        print(f"step {iter_num}: val loss {val:.4f}")
        best_val_loss = min(best_val_loss, val)
    for micro_step in range(gradient_accumulation_steps):
        logits, loss = model(X, Y)
        loss = loss / gradient_accumulation_steps
        X, Y = get_batch()
        scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    iter_num += 1
    if iter_num > max_iters:
        break

print("FINAL", iter_num, f"{best_val_loss:.6f}", f"{sum(p.double().sum().item() for p in model.parameters()):.10f}")
