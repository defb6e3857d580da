"""api tokens: one organisation (SIREN) each, only the SHA-256 of the secret (web/api, registry token)

Revision ID: 0004_api_tokens
Revises: 0003_accounts
Create Date: 2026-12-01 09:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_api_tokens"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_siren", "api_tokens", ["siren"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_tokens_siren", table_name="api_tokens")
    op.drop_table("api_tokens")
