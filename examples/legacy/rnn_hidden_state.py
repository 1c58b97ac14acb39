"""A recurrent model whose hidden state is carried from batch to batch and detached (TBPTT)."""
import torch
from torch import nn

torch.manual_seed(10)
seq = torch.sin(torch.linspace(0, 30, 401)).unsqueeze(1)
inputs, targets = seq[:-1].view(20, 20, 1), seq[1:].view(20, 20, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=4)


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, 16, batch_first=True)
        self.head = nn.Linear(16, 1)

    def forward(self, x, h):
        out, h = self.rnn(x, h)
        return self.head(out), h


model = Forecaster()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(3):
    hidden = torch.zeros(1, 4, 16)
    total = 0.0
    for x, y in loader:
        hidden = hidden.detach()
        optimizer.zero_grad()
        prediction, hidden = model(x, hidden)
        loss = nn.functional.mse_loss(prediction, y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    print(f"epoch {epoch} mean loss {total / len(loader):.6f}")
print(f"FINAL {total:.8f}")
