"""What the farm stands on: settings read from ``LYRE_*`` variables (``settings``), Postgres or
SQLite sessions and the migrations (``db``), the object store and the one place that builds its
keys (``storage``), and the names of queues, tasks and Redis keys (``queues``). Nothing here
knows about jobs, speech or audio."""
