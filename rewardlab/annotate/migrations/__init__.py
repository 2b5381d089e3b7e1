"""Alembic migrations for the annotation database (run by `rewardlab.annotate.db.upgrade`)."""
