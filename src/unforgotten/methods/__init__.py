"""Method registry. Entries are lazy so a method's module is imported only when it is used."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Method

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("sft", "unforgotten.methods.sft:SFT")


def build_methods(names: list[str], args: dict[str, dict[str, Any]] | None = None) -> list[Method]:
    """Instantiate the configured methods in order; arguments for unlisted methods are an error."""
    args = args or {}
    stray = [k for k in args if k not in names]
    if stray:
        from ..errors import ConfigError

        raise ConfigError(f"method_args given for methods not in train.methods: {stray}")
    return [METHODS.get(n).from_args(args.get(n)) for n in names]


__all__ = ["METHODS", "Method", "build_methods"]
