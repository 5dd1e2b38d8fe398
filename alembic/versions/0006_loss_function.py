"""What a run minimises: the tutorial's binary cross-entropy (every run before this) or mse.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("loss_function", sa.String(length=16), nullable=False, server_default="bce")
        )
        batch.create_check_constraint(
            op.f("ck_runs_loss_function"), "loss_function IN ('bce', 'mse')"
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_loss_function"), type_="check")
        batch.drop_column("loss_function")
