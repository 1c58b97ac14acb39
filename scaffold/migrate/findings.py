"""What migrate reports: one ``Finding`` per site, ``path:line:col: CODE [status] message``.

Codes (stable; tests and users grep for them):
  SCF001 training loop converted to a LightningModule + Trainer.fit
  SCF002 zero_grad/backward/step removed (automatic optimization)
  SCF003 batch transfer to the device removed (the Trainer moves batches)
  SCF004 gradient clipping mapped to Trainer(gradient_clip_*)
  SCF005 learning-rate scheduler moved to configure_optimizers
  SCF006 `break` mapped to ending the epoch / stopping the Trainer
  SCF007 epoch loop mapped to Trainer(max_epochs=...)
  SCF008-SCF015 precision, accumulation, manual optimization, hand-written updates, per-batch
         helpers inlined, training loss logged, evaluation helper -> validation hooks
  SCF016 hand-written trainer class flattened into its training method
  SCF017 distributed boilerplate removed / mapped to Trainer(strategy="ddp")
  SCF018 final evaluation helper -> test_step + trainer.test
  SCF019 early-stopping counter -> EarlyStopping callback
  SCF020 optimizer/scheduler construction moved into configure_optimizers
  SCF100 no hand-written training loop found (nothing to do)
  SCF3xx the loop is left as written (status manual): the reason says why
  SCF9xx the script is out of scope (refused): the reason says why
"""

from __future__ import annotations

from dataclasses import dataclass

FIXED, MANUAL, REFUSED, INFO = "fixed", "manual", "refused", "info"


@dataclass(frozen=True)
class Finding:
    code: str
    status: str
    message: str
    line: int = 1
    col: int = 1

    def format(self, path: str) -> str:
        return f"{path}:{self.line}:{self.col}: {self.code} [{self.status}] {self.message}"

    def as_dict(self, path: str) -> dict:
        return {
            "path": path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "status": self.status,
            "message": self.message,
        }


class CannotConvert(Exception):
    """The training loop cannot be converted safely; nothing is written (exit code 3)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding
