"""Loggers: ``from runtime.loggers import CSVLogger, TensorBoardLogger, MLFlowLogger,
WandbLogger``."""

from runtime.loggers.base import DummyLogger, Logger
from runtime.loggers.csv_logs import CSVLogger
from runtime.loggers.mlflow import MLFlowLogger
from runtime.loggers.tensorboard import TensorBoardLogger
from runtime.loggers.wandb import WandbLogger

__all__ = ["CSVLogger", "DummyLogger", "Logger", "MLFlowLogger", "TensorBoardLogger", "WandbLogger"]
