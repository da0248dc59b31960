"""per-project roles: the global role `none` and user_projects

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES_BEFORE = "role IN ('viewer', 'operator', 'admin')"
ROLES_AFTER = "role IN ('none', 'viewer', 'operator', 'admin')"


def _user_roles(check: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (names from the convention).
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint("role", check)


def upgrade() -> None:
    _user_roles(ROLES_AFTER)
    op.create_table(
        "user_projects",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'operator')", name=op.f("ck_user_projects_role")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_projects_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "project", name=op.f("pk_user_projects")),
    )


def downgrade() -> None:
    op.drop_table("user_projects")
    # Users whose global role is `none` had only project roles: they keep no access at all.
    op.execute(
        "UPDATE users SET is_active = false, token_version = token_version + 1 WHERE role = 'none'"
    )
    op.execute("UPDATE users SET role = 'viewer' WHERE role = 'none'")
    _user_roles(ROLES_BEFORE)
