"""One file per schema revision; new ones via `alembic revision` with script_location set here."""
