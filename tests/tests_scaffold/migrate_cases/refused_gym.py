import gym
import torch
from torch import nn

env = gym.make("CartPole-v1")
policy = nn.Linear(4, 2)
optimizer = torch.optim.Adam(policy.parameters())
for episode in range(10):
    for step in range(100):
        optimizer.zero_grad()
        policy(torch.randn(4)).sum().backward()
        optimizer.step()
