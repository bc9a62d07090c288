"""Where unforgotten keeps what it can rebuild: converted models, aligned models, generations."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$UNFORGOTTEN_CACHE``, else ``$XDG_CACHE_HOME/unforgotten``, else ``~/.cache/unforgotten``."""
    env = os.environ.get("UNFORGOTTEN_CACHE")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "unforgotten"
    root.mkdir(parents=True, exist_ok=True)
    return root
