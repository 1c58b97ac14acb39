"""Full-batch training (graph-style): the whole dataset is one batch, no DataLoader."""
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(9)
num_nodes, num_features, num_classes = 60, 8, 3
features = torch.randn(num_nodes, num_features)
adjacency = (torch.rand(num_nodes, num_nodes) < 0.1).float()
adjacency = ((adjacency + adjacency.T + torch.eye(num_nodes)) > 0).float()
adjacency = adjacency / adjacency.sum(dim=1, keepdim=True)
labels = (features[:, :num_classes] @ torch.ones(num_classes, num_classes)).argmax(dim=1)
train_mask = torch.arange(num_nodes) < 40


class GraphNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(num_features, 16)
        self.lin2 = nn.Linear(16, num_classes)

    def forward(self, x, adj):
        x = F.relu(adj @ self.lin1(x))
        x = F.dropout(x, p=0.3, training=self.training)
        return adj @ self.lin2(x)


model = GraphNet()
optimizer = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
for epoch in range(1, 41):
    model.train()
    optimizer.zero_grad()
    out = model(features, adjacency)
    loss = F.cross_entropy(out[train_mask], labels[train_mask])
    loss.backward()
    optimizer.step()
    if epoch % 10 == 0:
        print(f"epoch {epoch:03d} loss {loss.item():.4f}")
model.eval()
with torch.no_grad():
    accuracy = (model(features, adjacency).argmax(dim=1)[~train_mask] == labels[~train_mask]).float().mean()
print(f"FINAL {accuracy.item():.8f}")
