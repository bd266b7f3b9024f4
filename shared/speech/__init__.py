"""Text to speech, one chunk at a time. ``engine`` is the interface (a request in, SNAC codes or
PCM out, run on an event loop so that one engine serves many chunks at once) and ``factory``
builds the engine that settings name. Orpheus (``orpheus``) frames the prompt and parses the
generated tokens with the token codec (``codec``, ``frame_mask``) over one of three backends:
vLLM in process (``vllm_backend``, ``vllm_logits``), an OpenAI-compatible server
(``openai_backend``) or Hugging Face transformers (``transformers_backend``). ``espeak`` and
``null`` make PCM directly; ``weights`` finds or downloads the checkpoints."""
