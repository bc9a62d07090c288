"""Method registry. Entries are lazy so a method's module is imported only when it is used."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Method

METHODS: Registry[type[Method]] = Registry("method")
METHODS.register("sft", "unforgotten.methods.sft:SFT")
METHODS.register("safeinstr", "unforgotten.methods.safeinstr:SafeInstr")
METHODS.register("ewc", "unforgotten.methods.ewc:EWC")
METHODS.register("lwf", "unforgotten.methods.lwf:LwF")
METHODS.register("agem", "unforgotten.methods.agem:AGEM")
METHODS.register("der", "unforgotten.methods.der:DER")
METHODS.register("refresh", "unforgotten.methods.refresh:Refresh")
METHODS.register("magmax", "unforgotten.methods.magmax:MagMax")
METHODS.register("lisa", "unforgotten.methods.lisa:Lisa")
METHODS.register("safelora", "unforgotten.methods.safelora:SafeLoRA")
METHODS.register("ogpsa", "unforgotten.methods.ogpsa:OGPSA")
METHODS.register("gradselect", "unforgotten.methods.gradselect:GradSelect")
METHODS.register("grsap", "unforgotten.methods.grsap:GRSAP")


def build_methods(names: list[str], args: dict[str, dict[str, Any]] | None = None) -> list[Method]:
    """Instantiate the configured methods in order; arguments for unlisted methods are an error."""
    args = args or {}
    stray = [k for k in args if k not in names]
    if stray:
        from ..errors import ConfigError

        raise ConfigError(f"method_args given for methods not in train.methods: {stray}")
    methods = [METHODS.get(n).from_args(args.get(n)) for n in names]
    # A method that replaces the model at finalize (MagMax merges into plain weights) must come
    # last: later finalize hooks would expect the LoRA model. Checked now, not after training.
    for m in methods[:-1]:
        if m.replaces_model:
            from ..errors import ConfigError

            raise ConfigError(f"method {m.name!r} replaces the model when training ends, so it must be the last in train.methods")
    return methods


__all__ = ["METHODS", "Method", "build_methods"]
