"""A long text made speakable: any input read into one document (``documents``: EPUB through
``epub`` with ``epub_archive``, ``epub_toc`` and ``epub_pages``, HTML parsed by ``markup``, and
what a listener hears of a page, ``reading``; Markdown, text), normalised (``normalize``), cut
into spans of whole sentences that cover it exactly, each with its voice and the kind of
boundary before it (``chunking.chunk_text``; what is said of a span, ``spoken``),
pronunciation lexicons (``lexicon``), and the voices and emotive tags Orpheus knows, with the
Lyre voice each of OpenAI's voice names speaks with (``voices``)."""
