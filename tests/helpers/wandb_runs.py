"""Reads what an offline W&B run wrote (its ``run-<id>.wandb`` file): the history rows and the
config, for tests that check what ``WandbLogger`` logged.

The file is a record log in 32 KiB blocks (a 7-byte header, then records with a 7-byte header:
CRC, length, kind = full / first / middle / last piece), each record a ``wandb`` protobuf
``Record``; wandb ships the protobuf classes but no reader, so this is one.
"""

from __future__ import annotations

import glob
import json
import os
import struct
from collections.abc import Iterator
from typing import Any

_BLOCK = 32 * 1024
_HEADER = 7


def _records(path: str) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as fh:
        data = fh.read()
    pos, pieces = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        pieces += data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def run_file(save_dir: str, run_id: str) -> str:
    found = glob.glob(os.path.join(save_dir, "wandb", f"*-{run_id}", f"run-{run_id}.wandb"))
    assert len(found) == 1, f"no single run file for {run_id} under {save_dir}: {found}"
    _settled(found[0])
    return found[0]


def _settled(path: str, quiet: float = 0.5, limit: float = 15.0) -> None:
    """Waits until ``path`` has stopped growing for ``quiet`` seconds (at most ``limit``):
    wandb's service process can still be writing the run file when ``wandb.finish()``
    returns on a loaded machine (a CI run once read it with no history record yet)."""
    import time

    deadline = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = os.path.getsize(path)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def history(path: str) -> list[dict[str, Any]]:
    """The logged rows, without W&B's own ``_step``/``_runtime``/``_timestamp``."""
    rows = []
    for record in _records(path):
        if record.HasField("history"):
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            rows.append({k: v for k, v in row.items() if not k.startswith("_")})
    return rows


def config(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for record in _records(path):
        if record.HasField("config"):
            for item in record.config.update:
                out[_key(item)] = json.loads(item.value_json)
    return {k: v for k, v in out.items() if not k.startswith("_")}
