"""Lyre's code that the api and the workers share; it imports neither.

One folder per concern, each importing only folders listed before it:

- ``text``     a long text made speakable: normalising, chunking, voices
- ``infra``    settings, the tables, sessions, the object store, queue names and Redis keys
- ``audio``    the sample rate, finishing a chunk, loudness, joining a programme, encoding
- ``speech``   engines that turn a chunk's text into speech: Orpheus (SNAC codes) or espeak-ng
- ``snac``     SNAC codes to PCM on the CPU: the stock decoder and the tiled one
- ``webhooks`` the outbox, signed delivery with retries, the policy on webhook URLs
- ``farm``     jobs and chunks: states, transitions, the stages the workers run
- ``local``    embedded mode (``lyre synth``) and the command line

``docs/architecture.md`` follows a job through them.
"""
