"""The service's commands (``serve``, ``worker``, ``keys``), registered on the main CLI app.

Thin wrappers, like every command: the work is in ``app.py``, ``worker.py`` and ``auth.py``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

console = Console()
ServiceOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Service config (YAML); see docs/service.md.")]


def _settings(config: Optional[Path], **overrides):
    from .settings import load_service_config

    return load_service_config(config, {k: v for k, v in overrides.items() if v is not None})


def register(app: typer.Typer, guard: Callable) -> None:
    keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke the service's API keys.")
    app.add_typer(keys_app, name="keys")

    @app.command()
    @guard
    def serve(config: ServiceOpt = None,
              workers: Annotated[int, typer.Option(help="Worker processes to start beside the API (0: run them elsewhere).")] = 1,
              host: Annotated[Optional[str], typer.Option(help="Bind address (default: the config's).")] = None,
              port: Annotated[Optional[int], typer.Option(help="Port (default: the config's).")] = None):
        """Run the OpenAI-compatible fine-tuning API (and N workers) on this machine."""
        import uvicorn

        from .app import create_app

        settings = _settings(config, host=host, port=port)
        app_ = create_app(settings)  # migrates the store before any worker starts
        cmd = [sys.executable, "-m", "unforgotten.cli", "worker"] + (["-c", str(config)] if config else [])
        procs = [subprocess.Popen(cmd) for _ in range(workers)]
        # uvicorn shuts down on SIGTERM and then re-raises it to the handler in place before it
        # started; this one lets the `finally` below stop the workers instead of dying first.
        signal.signal(signal.SIGTERM, lambda *_: None)
        try:
            uvicorn.run(app_, host=settings.host, port=settings.port, log_level="info")
        finally:
            for p in procs:
                p.terminate()  # a worker checkpoints its job at the next step and re-queues it
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()  # its job's lease expires and another worker resumes it

    @app.command()
    @guard
    def worker(config: ServiceOpt = None):
        """Run one worker: claim jobs from the store, screen, fine-tune, gate, publish."""
        from .worker import main_loop

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        main_loop(_settings(config))

    @keys_app.command("create")
    @guard
    def keys_create(tenant: Annotated[str, typer.Argument(help="The tenant (organization) the key acts for.")],
                    name: Annotated[str, typer.Option(help="A note for admins.")] = "", config: ServiceOpt = None):
        """Create an API key; it is printed once and stored only as a hash."""
        from .auth import create_key
        from .store import Store

        key_id, key = create_key(Store(_settings(config).db_url), tenant, name)
        console.print(f"key_id: {key_id}\ntenant: {tenant}\nkey:    {key}", highlight=False)

    @keys_app.command("revoke")
    @guard
    def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys create` or `keys list`).")],
                    config: ServiceOpt = None):
        """Revoke a key: requests with it get 401 from now on."""
        from ..errors import UserInputError
        from .store import Store

        if not Store(_settings(config).db_url).revoke_key(key_id):
            raise UserInputError(f"no active key {key_id!r}")
        console.print(f"revoked {key_id}")

    @keys_app.command("list")
    @guard
    def keys_list(config: ServiceOpt = None):
        """List keys (ids, tenants, state; never the keys themselves)."""
        from .store import Store

        for k in Store(_settings(config).db_url).list_keys():
            console.print(f"{k.key_id}  {k.tenant}  {'revoked' if k.revoked_at else 'active'}  {k.name}", highlight=False)
