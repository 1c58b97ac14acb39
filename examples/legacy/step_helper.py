"""A per-batch helper takes the optimizer step; the loop only calls it."""
import torch
from torch import nn


def train_step(model, batch, optimizer, loss_fn):
    """One optimization step; returns the loss as a float."""
    inputs, labels = batch
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def main():
    torch.manual_seed(27)
    dataset = torch.utils.data.TensorDataset(torch.randn(100, 4), torch.randint(0, 2, (100,)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=10, shuffle=True)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(3):
        losses = []
        for batch in loader:
            loss = train_step(model, batch, optimizer, loss_fn)
            losses.append(loss)
        print(f"epoch {epoch}: {sum(losses) / len(losses):.5f}")
    print(f"FINAL {losses[-1]:.8f}")


if __name__ == "__main__":
    main()
