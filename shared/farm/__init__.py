"""Jobs, chapters and chunks, with Postgres as the source of truth. ``intake`` is the one way a
text becomes a job (read, checked, chunked, stored); ``states`` are the states with the tables
of allowed transitions, ``transitions`` every compare-and-set statement, named after its edge.
``dispatch`` decides which chunks the GPUs make next (the policy, one function) and keeps a
bounded window of them on the gpu queue, sized by ``gpu_workers``; ``sender`` puts the farm's
messages on Celery's queues. The stages the workers run take ids and are idempotent: ``stages``
(generate and decode a chunk, each with the chunk's seed from ``seeds``), ``chapter_stitch`` (a
chapter's file, as soon as its chunks are done), ``book_stitch`` (the book's files once every
chapter is), ``reconcile`` (re-send work whose lease ran out). ``jobs`` makes, submits, fails,
cancels and describes a job; ``outputs`` names its files and lists them; ``redo`` makes one
chapter again as the next version; ``follow`` gives a job's audio chunk by chunk as the chunks
are done, for someone listening meanwhile; ``context`` is what the stages run against
(:class:`~shared.farm.context.FarmContext`); ``tenants`` holds API keys, weights and limits,
``limits`` applies them. The tables themselves are ``shared.infra.models``."""
