"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir, trust auth on
127.0.0.1 and a free port. initdb refuses to run as root, so as root the cluster belongs to the
``postgres`` user (the Debian package creates it) and its commands run through ``runuser``."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from service_kit import free_port


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).resolve().parent if which else None


def why_unavailable() -> str | None:
    if pg_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed; .ci/run installs the postgresql package"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode):
        return "running as root without a 'postgres' user and runuser to own the cluster"
    return None


@contextmanager
def postgres_server():
    """Yields a SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    bindir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="uf-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()

    def run(*cmd):
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o",
        f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
