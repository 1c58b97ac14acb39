"""Hook call order equals Lightning 2.6's, as recorded in shared/conformance."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFORMANCE = os.path.join(os.path.dirname(ROOT), "shared", "conformance")


@pytest.mark.skipif(
    not os.path.isdir(CONFORMANCE), reason="shared/conformance is not beside the repo"
)
def test_hook_order_matches_lightning(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(CONFORMANCE, "record_hooks.py"),
            str(tmp_path / "o.json"),
            "--compare",
            os.path.join(CONFORMANCE, "lightning_hook_order.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "IMPL": "runtime", "PYTHONPATH": ROOT},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for stage in ("fit", "validate", "test", "predict"):
        assert f"[{stage}] identical" in out.stdout
