"""Lyre's code that the api, the workers and the command line share; it imports none of them.

One folder per concern, each importing only folders listed before it:

- ``text``     a long text made speakable: normalising, chunking, voices
- ``infra``    settings, the tables, sessions, the object store, queue names and Redis keys
- ``audio``    the sample rate, finishing a chunk, loudness, joining a programme, encoding
- ``speech``   engines that turn a chunk's text into speech: Orpheus (SNAC codes) or espeak-ng
- ``snac``     SNAC codes to PCM on the CPU: the stock decoder and the tiled one
- ``checks``   what is checked of each take of a chunk (its end, pace, loops, silence, words),
               and faults on demand to prove it
- ``webhooks`` the outbox, signed delivery with retries, the policy on webhook URLs
- ``farm``     jobs and chunks: the intake, states, transitions, the stages the workers run, and
               the sending side of the queues

``docs/architecture.md`` follows a job through them.
"""
