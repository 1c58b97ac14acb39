"""Strategies: where the model lives and how processes talk.

``SingleDeviceStrategy`` (one process), ``DDPStrategy`` and ``FSDPStrategy`` (torch.distributed).
"""

from runtime.strategies.ddp import DDPStrategy
from runtime.strategies.fsdp import FSDPStrategy
from runtime.strategies.single import SingleDeviceStrategy, Strategy

__all__ = ["DDPStrategy", "FSDPStrategy", "SingleDeviceStrategy", "Strategy"]
