"""The initial schema: api keys, files, jobs, events, checkpoints, models.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _seq() -> sa.Column:
    return sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True)


def _id(name: str = "id", length: int = 40) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=False, unique=True, index=True)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True, index=True),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        _ts("created_at"), _ts("revoked_at", True),
    )
    op.create_table(
        "files",
        _seq(), _id(),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_details", sa.Text, nullable=True),
        _ts("created_at"),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "jobs",
        _seq(), _id(),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("training_file", sa.String(40), nullable=False),
        sa.Column("validation_file", sa.String(40), nullable=True),
        sa.Column("suffix", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("method", sa.JSON, nullable=False),
        sa.Column("safety", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=True),
        _ts("created_at"), _ts("finished_at", True), _ts("estimated_finish", True),
        sa.Column("fine_tuned_model", sa.String(300), nullable=True),
        sa.Column("trained_tokens", sa.BigInteger, nullable=True),
        sa.Column("result_files", sa.JSON, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("pause_requested", sa.Boolean, nullable=False),
        sa.Column("screening", sa.JSON, nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("total_steps", sa.Integer, nullable=True),
    )
    op.create_table(
        "events",
        _seq(), _id(),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        _ts("created_at"),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
    )
    op.create_table(
        "checkpoints",
        _seq(), _id(),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        _ts("created_at"),
        sa.Column("step_number", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
    )
    op.create_table(
        "models",
        _seq(), _id("id", 300),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("base", sa.String(200), nullable=False),
        _ts("created_at"),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for table in ("models", "checkpoints", "events", "jobs", "files", "api_keys"):
        op.drop_table(table)
