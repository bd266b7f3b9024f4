"""Voices and emotive tags Orpheus knows (docs/orpheus.md)."""

from typing import Literal, get_args

# Ordered by the authors' realism ranking.
Voice = Literal["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
VOICES: tuple[Voice, ...] = get_args(Voice)

# Tags the fine-tuned model voices; any other <tag> would be read aloud as a word.
EMOTIVE_TAGS = frozenset({"laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp"})
