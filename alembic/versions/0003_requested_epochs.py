"""Runs keep the epochs they were created with, since a resume raises `epochs`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("requested_epochs", sa.Integer(), nullable=True))
    # Runs made before this revision: what they aim for now is the best record there is.
    op.execute("UPDATE runs SET requested_epochs = epochs")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("requested_epochs", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("requested_epochs")
