"""Loggers: ``from runtime.loggers import CSVLogger, TensorBoardLogger``."""

from runtime.loggers.base import DummyLogger, Logger
from runtime.loggers.csv_logs import CSVLogger
from runtime.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "DummyLogger", "Logger", "TensorBoardLogger"]
