"""initial tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("nom", sa.String(length=300), nullable=False),
        sa.Column("type_porteur", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("siren"),
    )
    op.create_table(
        "experiences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("siren_porteur", sa.String(length=9), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.Column("intitule", sa.Text(), nullable=False),
        sa.Column("domaine", sa.String(length=60), nullable=False),
        sa.Column("phase", sa.String(length=30), nullable=False),
        sa.Column("statut", sa.String(length=30), nullable=False),
        sa.Column("resultat", sa.String(length=60), nullable=False),
        sa.Column("code_insee_commune", sa.String(length=5), nullable=False),
        sa.Column("departement", sa.String(length=3), nullable=True),
        sa.Column("region", sa.String(length=3), nullable=True),
        sa.Column("date_debut", sa.String(length=10), nullable=False),
        sa.Column("date_fin", sa.String(length=10), nullable=True),
        sa.Column("date_maj", sa.String(length=10), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("record", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["siren_porteur"],
            ["organisations.siren"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("experiences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiences_code_insee_commune"), ["code_insee_commune"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_experiences_departement"), ["departement"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_domaine"), ["domaine"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_phase"), ["phase"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_region"), ["region"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_resultat"), ["resultat"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_siren_porteur"), ["siren_porteur"], unique=False)
        batch_op.create_index(batch_op.f("ix_experiences_statut"), ["statut"], unique=False)

    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experience_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("source_name", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("standard_version", sa.String(length=20), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("record", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experience_id"],
            ["experiences.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experience_id", "number"),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revisions_experience_id"), ["experience_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experience_id", sa.String(length=40), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["revisions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_pending", ["processed_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")

    op.drop_table("outbox")
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisions_experience_id"))

    op.drop_table("revisions")
    with op.batch_alter_table("experiences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiences_statut"))
        batch_op.drop_index(batch_op.f("ix_experiences_siren_porteur"))
        batch_op.drop_index(batch_op.f("ix_experiences_resultat"))
        batch_op.drop_index(batch_op.f("ix_experiences_region"))
        batch_op.drop_index(batch_op.f("ix_experiences_phase"))
        batch_op.drop_index(batch_op.f("ix_experiences_domaine"))
        batch_op.drop_index(batch_op.f("ix_experiences_departement"))
        batch_op.drop_index(batch_op.f("ix_experiences_code_insee_commune"))

    op.drop_table("experiences")
    op.drop_table("organisations")
