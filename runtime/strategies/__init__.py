"""Strategies: where the model lives and how processes talk (single device here)."""

from runtime.strategies.single import SingleDeviceStrategy, Strategy

__all__ = ["SingleDeviceStrategy", "Strategy"]
