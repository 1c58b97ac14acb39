# Inference only: nothing to migrate.
import torch

model = torch.nn.Linear(2, 2)
print(model(torch.ones(1, 2)))
