"""``lyre synth --dry-run``: what the engine will be asked to say, a line a chunk."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.farm.intake import Line


def print_preview(lines: list[Line], as_json: bool) -> None:
    """Each chunk's text as the engine would be asked to say it, a line each; or, as JSON, with
    its chapter (from 1), voice and the author's words."""
    for line in lines:
        if not as_json:
            print(line.said)
            continue
        shown = {
            "chunk": line.index,
            "chapter": line.chapter + 1,
            "chapter_title": line.chapter_title,
            "voice": line.voice,
            "said": line.said,
            "written": line.written,
            "pause_s": line.pause_s,
            "rate": line.rate,
            "marks": list(line.marks),
        }
        print(json.dumps(shown, ensure_ascii=False))
