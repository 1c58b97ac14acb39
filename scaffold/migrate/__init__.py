"""``scaffold migrate``: hand-written PyTorch training loops -> LightningModule + Trainer.fit.

``migrate_source(code)`` converts one script's text; ``files.run`` handles paths, writes and
reports. libcst is imported only when a command needs it."""
