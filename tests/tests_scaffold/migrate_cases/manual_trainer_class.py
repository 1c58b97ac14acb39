import torch


class Trainer:
    def __init__(self, model, loader, optimizer):
        self.model, self.loader, self.optimizer = model, loader, optimizer

    def _run_batch(self, x, y):
        self.optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(self.model(x), y)
        if not torch.isfinite(loss):
            return  # skip the step: an early return has no place in a training_step
        loss.backward()
        self.optimizer.step()

    def train(self, epochs):
        for _ in range(epochs):
            for x, y in self.loader:
                self._run_batch(x, y)
