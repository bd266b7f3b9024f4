"""Audio after the engine: a chunk trimmed, faded and measured (``finish``), BS.1770 loudness
(``loudness``), the chunks joined into one programme with pauses and one gain (``programme``),
and the programme encoded as it is written (``encode``, which also holds the table of output
formats). All PCM in Lyre is float32 mono at :data:`SAMPLE_RATE`."""

SAMPLE_RATE = 24000  # SNAC 24 kHz's rate; engines that make PCM resample to it
