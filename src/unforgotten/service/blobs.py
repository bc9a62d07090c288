"""Uploaded files on disk: streamed, atomic, content-addressed.

An upload is written chunk by chunk to ``tmp/`` (never held whole in memory), hashed as it
goes, fsynced, then renamed to ``blobs/<sha256>``: a rename is atomic, so a crash mid-upload
leaves at most a temp file that no file row points to (swept at start-up), never a visible
half file. Identical uploads share one blob; a file row names its blob by hash.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

CHUNK = 1 << 20


class TooLarge(Exception):
    pass


class Blobs:
    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir)
        self.blob_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def sweep(self, older_than_s: float = 3600) -> int:
        """Remove temp files of uploads that died (older than an upload could take)."""
        n = 0
        for p in self.tmp_dir.iterdir():
            try:
                if time.time() - p.stat().st_mtime > older_than_s:
                    p.unlink()
                    n += 1
            except FileNotFoundError:
                pass
        return n

    def temp_path(self, suffix: str = "") -> Path:
        return self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"

    async def receive(self, chunks: AsyncIterator[bytes], max_bytes: int, suffix: str = ".jsonl") -> tuple[Path, str, int]:
        """Write ``chunks`` to a temp file; returns (temp path, sha256, size). Over ``max_bytes``:
        the temp file is removed and ``TooLarge`` raised."""
        tmp = self.temp_path(suffix)
        h, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(size)
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, h.hexdigest(), size

    def path(self, sha256: str) -> Path:
        return self.blob_dir / sha256

    def commit(self, tmp: Path, sha256: str) -> Path:
        """Move a received temp file to its content address (atomic)."""
        final = self.path(sha256)
        os.replace(tmp, final)  # same content either way; replacing keeps it present if it was just removed
        return final

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def write_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes the service made itself (result files); returns (sha256, size)."""
        sha = hashlib.sha256(data).hexdigest()
        tmp = self.temp_path()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.commit(tmp, sha)
        return sha, len(data)
