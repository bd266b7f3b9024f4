"""A long text made speakable: normalised (``normalize``), cut into spans of whole
sentences that cover it exactly, each with its voice and the kind of boundary before it
(``chunking.chunk_text``), and the voices and emotive tags Orpheus knows (``voices``). Input
readers (EPUB, HTML) belong here too."""
