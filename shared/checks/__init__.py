"""What Lyre checks of the speech an engine makes: each take of a chunk is checked at generation
(``speech``) and at decode (``audio``, and optionally ``transcript``); a take that fails is made
again with the next seed, and the best of takes that all fail is kept and called suspect."""
