"""Audio after the engine: a chunk trimmed, faded and measured (``finish``), BS.1770 loudness
(``loudness``), the chunks joined with pauses and a gain per chapter (``programme``), a peak
limiter (``limiter``), encoding as it is written (``encode``, which also holds the one table of
formats, the files' and the speech's, and writes chapters, tags and cover art), how a job's
files are made (``presets``), ACX's checks of a file (``acx``) and captions (``captions``); for
a listener waiting on it, speech encoded as it is made in OpenAI's formats (``stream``) and
played faster or slower at its pitch (``tempo``). All PCM in Lyre is float32 mono at
:data:`SAMPLE_RATE`."""

SAMPLE_RATE = 24000  # SNAC 24 kHz's rate; engines that make PCM resample to it
