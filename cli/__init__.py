"""The ``lyre`` command line (``main``): ``lyre synth`` runs a whole job in one process
(``synth``; ``runner`` runs the farm's own stages on a thread pool with SQLite and a folder in
place of Postgres, Redis and S3, and ``resume`` picks up an interrupted run); ``admin`` is its
commands on a farm's database (``lyre keys``, ``lyre tenants``). It stands on ``shared/``
alone, beside ``api/`` and ``workers/``."""
