"""The service's state in SQLAlchemy 2.0 (SQLite WAL by default, PostgreSQL by URL).

Tables: api keys, files, jobs, events, checkpoints, fine-tuned models. Every customer-owned
row carries its ``tenant`` and every query below filters on it, so one tenant's object is
invisible to another (the API answers 404, exactly as for an id that never existed).

The schema is Alembic's (``migrations/``); ``open_store`` upgrades it to head. Workers claim
jobs with a lease: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite ignores the
clause and serializes writers instead), then a compare-and-set UPDATE, so two workers never
hold one job.
"""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, create_engine, event, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# Statuses, as OpenAI names them.
VALIDATING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "validating_files", "queued", "running", "succeeded", "failed", "cancelled")
FINAL = (SUCCEEDED, FAILED, CANCELLED)
PAUSED = "paused"  # OpenAI's API has pause/resume; a paused job waits here until resumed


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # shown to admins; not secret
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)  # sha256 of the key
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class FileRow(Base):
    __tablename__ = "files"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # the blob's name in the data dir
    status: Mapped[str] = mapped_column(String(20), default="processed")
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class JobRow(Base):
    __tablename__ = "jobs"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    model: Mapped[str] = mapped_column(String(200))
    training_file: Mapped[str] = mapped_column(String(40))
    validation_file: Mapped[str | None] = mapped_column(String(40), nullable=True)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)
    safety: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"method": ..., "args": {...}} after defaults
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    estimated_finish: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # worker bookkeeping
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    screening: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # what screening flagged
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EventRow(Base):
    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    level: Mapped[str] = mapped_column(String(10), default="info")
    type: Mapped[str] = mapped_column(String(10), default="message")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    step_number: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)


class ModelRow(Base):
    __tablename__ = "models"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(300), unique=True, index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str] = mapped_column(String(40))
    base: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


# --------------------------------------------------------------------------- engine


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
            # writes can fail with SQLITE_BUSY at once (no waiting) when another process wrote
            # in between; this one waits its turn under busy_timeout instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's head (idempotent; safe to call from every process)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # several processes may start at once
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(191919)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """The few queries the API and the workers need; every read of tenant data takes the tenant."""

    def __init__(self, url: str, *, run_migrations: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ keys
    def add_key(self, key_id: str, key_hash: str, tenant: str, name: str = "") -> None:
        with self.session() as s:
            s.add(ApiKey(key_id=key_id, key_hash=key_hash, tenant=tenant, name=name, created_at=now()))

    def tenant_for_hash(self, key_hash: str) -> str | None:
        with self.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))
            return row.tenant if row else None

    def revoke_key(self, key_id: str) -> bool:
        with self.session() as s:
            res = s.execute(update(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now()))
            return res.rowcount == 1

    def list_keys(self) -> list[ApiKey]:
        with self.session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))

    # ------------------------------------------------------------------ generic tenant reads
    def get(self, cls, tenant: str, obj_id: str):
        """The tenant's object ``obj_id`` (files/jobs/models: not deleted) or None."""
        with self.session() as s:
            q = select(cls).where(cls.id == obj_id, cls.tenant == tenant)
            if hasattr(cls, "deleted"):
                q = q.where(cls.deleted.is_(False))
            return s.scalar(q)

    def page(self, cls, *, where: list, after: str | None, limit: int, newest_first: bool = True):
        """One page of rows in creation order (``after``: the last id of the previous page).
        Returns (rows, has_more), or None when ``after`` names no row in this listing."""
        with self.session() as s:
            q = select(cls).where(*where)
            if after is not None:
                seq = s.scalar(select(cls.seq).where(cls.id == after, *where))
                if seq is None:
                    return None
                q = q.where(cls.seq < seq if newest_first else cls.seq > seq)
            q = q.order_by(cls.seq.desc() if newest_first else cls.seq.asc()).limit(limit + 1)
            rows = list(s.scalars(q))
            return rows[:limit], len(rows) > limit

    # ------------------------------------------------------------------ files
    def _lock_blob(self, s: Session, sha256: str) -> None:
        # An upload of some content and the deletion of the last file with that content must not
        # interleave (the upload would point at a blob the deletion removes). SQLite's IMMEDIATE
        # transactions already serialize them; PostgreSQL takes a lock on the content hash.
        if self.engine.dialect.name == "postgresql":
            s.execute(select(func.pg_advisory_xact_lock(int(sha256[:15], 16))))

    def add_file(self, row: FileRow, place_blob: Callable[[], Any] = lambda: None) -> FileRow:
        """Insert ``row`` after ``place_blob()`` put its content in place, under the blob's lock."""
        with self.session() as s:
            self._lock_blob(s, row.sha256)
            place_blob()
            s.add(row)
        return row

    def delete_file(self, tenant: str, file_id: str, remove_blob: Callable[[str], Any]) -> bool:
        """Mark the file deleted and remove its blob when no live file uses that content; False if no such file."""
        with self.session() as s:
            row = s.scalar(select(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant, FileRow.deleted.is_(False)))
            if row is None:
                return False
            self._lock_blob(s, row.sha256)
            row.deleted = True
            s.flush()
            others = s.scalar(select(func.count()).select_from(FileRow).where(FileRow.sha256 == row.sha256, FileRow.deleted.is_(False)))
            if others == 0:
                remove_blob(row.sha256)
            return True

    # ------------------------------------------------------------------ jobs
    def add_job(self, row: JobRow, message: str) -> JobRow:
        with self.session() as s:
            s.add(row)
            s.flush()
            s.add(EventRow(id=new_id("ftevent"), job_id=row.id, created_at=now(), message=message))
        return row

    def request(self, tenant: str, job_id: str, *, cancel: bool = False, pause: bool = False, resume: bool = False) -> JobRow | None:
        """Cancel, pause or resume a job. A job no worker holds changes at once; a running one
        is told through its flags and stops at its next step."""
        with self.session() as s:
            job = s.scalar(select(JobRow).where(JobRow.id == job_id, JobRow.tenant == tenant).with_for_update())
            if job is None:
                return None
            held = job.lease_owner is not None
            if cancel and job.status not in FINAL:
                if held:
                    job.cancel_requested = True
                else:
                    job.status, job.finished_at, job.estimated_finish = CANCELLED, now(), None
                    s.add(EventRow(id=new_id("ftevent"), job_id=job.id, created_at=now(), message="Job cancelled"))
            elif pause and job.status in (VALIDATING, QUEUED, RUNNING):
                if held:
                    job.pause_requested = True
                else:
                    job.status = PAUSED
                    s.add(EventRow(id=new_id("ftevent"), job_id=job.id, created_at=now(), message="Job paused"))
            elif resume and job.status == PAUSED:
                # a job paused before its files were screened goes back to screening first
                job.status, job.pause_requested = (QUEUED if job.screening is not None else VALIDATING), False
                s.add(EventRow(id=new_id("ftevent"), job_id=job.id, created_at=now(), message="Job resumed; queued"))
            return job

    def claim(self, worker: str, lease_s: float) -> JobRow | None:
        """Take the oldest job that needs a worker: new ones, and ones whose worker stopped
        sending heartbeats (it crashed or lost its machine) -- those resume from a checkpoint."""
        t = time.time()
        with self.session() as s:
            claimable = or_(
                (JobRow.status.in_((VALIDATING, QUEUED)) & JobRow.lease_owner.is_(None)),
                (JobRow.status.in_((VALIDATING, QUEUED, RUNNING)) & (JobRow.lease_expires < t)),
            )
            job = s.scalar(select(JobRow).where(claimable).order_by(JobRow.seq).limit(1).with_for_update(skip_locked=True))
            if job is None:
                return None
            res = s.execute(
                update(JobRow).where(JobRow.id == job.id, claimable)
                .values(lease_owner=worker, lease_expires=t + lease_s, attempts=JobRow.attempts + 1)
            )
            if res.rowcount != 1:
                return None
            s.refresh(job)
            return job

    def heartbeat(self, job_id: str, worker: str, lease_s: float) -> JobRow | None:
        """Extend the lease; None when this worker no longer holds the job (it was re-claimed)."""
        with self.session() as s:
            res = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.lease_owner == worker)
                            .values(lease_expires=time.time() + lease_s))
            if res.rowcount != 1:
                return None
            return s.scalar(select(JobRow).where(JobRow.id == job_id))

    def update_job(self, job_id: str, worker: str | None, *, release: bool = False, event: dict[str, Any] | None = None,
                   **values: Any) -> bool:
        """Change a job this worker holds (``worker=None``: unconditionally), optionally adding an
        event in the same transaction; False when the lease was lost."""
        with self.session() as s:
            q = update(JobRow).where(JobRow.id == job_id)
            if worker is not None:
                q = q.where(JobRow.lease_owner == worker)
            if release:
                values.update(lease_owner=None, lease_expires=None)
            res = s.execute(q.values(**values)) if values else None
            if res is not None and res.rowcount != 1:
                return False
            if event is not None:
                s.add(EventRow(id=new_id("ftevent"), job_id=job_id, created_at=now(), **event))
            return True

    def add_event(self, job_id: str, message: str, *, level: str = "info", type: str = "message",
                  data: dict[str, Any] | None = None) -> None:
        with self.session() as s:
            s.add(EventRow(id=new_id("ftevent"), job_id=job_id, created_at=now(), level=level, type=type,
                           message=message, data=data))

    def metric_steps(self, job_id: str) -> set[int]:
        """Steps that have a metrics event."""
        with self.session() as s:
            return {int(d["step"]) for d in s.scalars(select(EventRow.data).where(EventRow.job_id == job_id,
                                                                                 EventRow.type == "metrics")) if d}

    def add_checkpoint(self, job_id: str, step: int, metrics: dict[str, Any]) -> None:
        with self.session() as s:
            if s.scalar(select(CheckpointRow).where(CheckpointRow.job_id == job_id, CheckpointRow.step_number == step)):
                return  # a resumed run passes the same step again
            s.add(CheckpointRow(id=new_id("ftckpt"), job_id=job_id, created_at=now(), step_number=step, metrics=metrics))

    def add_model(self, row: ModelRow) -> None:
        with self.session() as s:
            s.add(row)

    def mark_model_deleted(self, model_id: str) -> None:
        with self.session() as s:
            s.execute(update(ModelRow).where(ModelRow.id == model_id).values(deleted=True))

    # ------------------------------------------------------------------ metrics
    def counts(self) -> dict[str, Any]:
        with self.session() as s:
            by_status = dict(s.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all())
            steps = s.scalar(select(func.count()).select_from(EventRow).where(EventRow.type == "metrics")) or 0
            recent = s.scalar(select(func.count()).select_from(EventRow)
                              .where(EventRow.type == "metrics", EventRow.created_at >= now() - 60)) or 0
        return {"by_status": by_status, "steps_total": steps, "steps_last_minute": recent}
