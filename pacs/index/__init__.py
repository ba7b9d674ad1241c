"""The catalogue of patients, studies, series and instances (SQLAlchemy 2 async)."""
