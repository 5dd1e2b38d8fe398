"""Why a failed run failed, as a name /metrics can count (the error text stays for people).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Runs that failed before this revision: their reason read from the messages the workers wrote.
BACKFILL = (
    ("loss diverged at epoch %", "diverged"),
    ("training error: %", "error"),
    ("cannot resume: %", "checkpoint"),
    ("its worker (%", "worker_lost"),
    ("%PC_MAX_STORE_BYTES%", "store_full"),
    ("device %", "device"),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("failure_reason", sa.String(length=16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_runs_failure_reason"),
            "failure_reason IN ('device', 'checkpoint', 'store_full', 'diverged', 'error', "
            "'worker_lost')",
        )
    runs = sa.table(
        "runs",
        sa.column("status", sa.String),
        sa.column("error", sa.Text),
        sa.column("failure_reason", sa.String),
    )
    for pattern, reason in BACKFILL:
        op.execute(
            runs.update()
            .where(runs.c.status == "failed")
            .where(runs.c.failure_reason.is_(None))
            .where(runs.c.error.like(pattern))
            .values(failure_reason=reason)
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_failure_reason"), type_="check")
        batch.drop_column("failure_reason")
