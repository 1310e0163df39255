"""The PostgreSQL ledger: models, Alembic migrations and portable statements."""
