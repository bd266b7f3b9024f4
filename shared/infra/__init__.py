"""What the farm stands on: settings read from ``LYRE_*`` variables (``settings``), the tables
(``models``, one schema for Postgres and SQLite), sessions and migrations (``db``), the object
store and the one place that builds its keys (``storage``), and the names of queues, tasks and
Redis keys (``queues``). Nothing here knows what a stage does."""
