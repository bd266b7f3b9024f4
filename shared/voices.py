"""Voices and emotive tags Orpheus knows (ORPHEUS.md)."""

# Ordered by the authors' realism ranking.
VOICES = ("tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe")

# Tags the fine-tuned model voices; any other <tag> would be read aloud as a word.
EMOTIVE_TAGS = frozenset({"laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp"})
