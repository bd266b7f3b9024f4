"""Lyre on one machine: ``runner`` runs the farm's own stages on a thread pool with SQLite and
a folder in place of Postgres, Redis and S3 (``resume`` picks up an interrupted run), ``synth``
is ``lyre synth`` and ``cli`` the ``lyre`` command (``lyre synth``, ``lyre models``); ``admin``
is its commands on a farm's database (``lyre keys``, ``lyre tenants``)."""
