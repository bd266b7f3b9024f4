"""What the farm stands on: settings read from ``LYRE_*`` variables (``settings``), the tables
(``models``, one schema for Postgres and SQLite), sessions and migrations (``db``), the object
store and the one place that builds its keys (``storage``), the names of queues, tasks and
Redis keys (``queues``), and which failures mean one of those services is down (``outages``).
Nothing here knows what a stage does."""
