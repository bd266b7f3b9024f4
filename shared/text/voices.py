"""Voices and emotive tags Orpheus knows (docs/orpheus.md), and the Lyre voice each of OpenAI's
voice names speaks with, so that programs written for OpenAI's speech endpoint run unchanged."""

from typing import Literal, get_args

# Ordered by the authors' realism ranking.
Voice = Literal["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
VOICES: tuple[Voice, ...] = get_args(Voice)
DEFAULT_VOICE: Voice = "tara"  # the most natural, by the authors' ranking

# OpenAI's built-in voices, each to the Lyre voice nearest in kind (women's voices to women's,
# men's to men's; OpenAI has more of each than Orpheus, so some share one).
OPENAI_VOICES: dict[str, Voice] = {
    "alloy": "tara",
    "ash": "leo",
    "ballad": "dan",
    "cedar": "leo",
    "coral": "leah",
    "echo": "zac",
    "fable": "dan",
    "marin": "tara",
    "nova": "jess",
    "onyx": "leo",
    "sage": "mia",
    "shimmer": "zoe",
    "verse": "zac",
}


def find_voice(name: str) -> Voice | None:
    """The Lyre voice ``name`` stands for (a Lyre voice, or one of OpenAI's names; any case),
    or None."""
    key = name.strip().lower()
    for voice in VOICES:
        if voice == key:
            return voice
    return OPENAI_VOICES.get(key)


# Tags the fine-tuned model voices; any other <tag> would be read aloud as a word.
EMOTIVE_TAGS = frozenset({"laugh", "chuckle", "sigh", "cough", "sniffle", "groan", "yawn", "gasp"})
