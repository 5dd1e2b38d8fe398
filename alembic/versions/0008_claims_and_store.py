"""Each claim of a run gets its own number, and the database remembers which models store it uses.

`runs.claim`: raised by every claim, so a worker that lost its run (paused past the heartbeat
timeout, then woken) can be told apart from the run's new owner in every write, and names its
files apart from theirs. `installation`: one row, the id written into the models store's marker
file, so a process started with another store is refused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("claim", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_installation_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )


def downgrade() -> None:
    op.drop_table("installation")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("claim")
