"""Fine-tuning as a service: an OpenAI-compatible jobs API over ``unforgotten.api``.

The API (``app.py``) and the workers (``worker.py``) share nothing but the store (``store.py``:
SQLite by default, PostgreSQL by URL) and the data directory (uploaded files, job outputs), so
several of each can run on several machines. See docs/service.md.
"""
