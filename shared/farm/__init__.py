"""Jobs and chunks, with Postgres as the source of truth: ``states`` are the job's and the
chunk's states with their tables of allowed transitions, ``transitions`` every compare-and-set
statement, named after its edge. The stages the workers run take ids and are idempotent:
``stages`` (generate and decode a chunk), ``stitching`` (the programme, read ahead and encoded),
``reconcile`` (re-send work whose lease ran out). ``jobs`` makes, submits, fails, cancels and
describes a job; ``context`` is what the stages run against; ``tenants`` holds API keys. The
tables themselves are ``shared.infra.models``."""
