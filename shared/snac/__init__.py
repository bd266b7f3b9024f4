"""SNAC codes to 24 kHz PCM on the CPU, the cpu worker's whole job. ``decoder.SnacDecoder``
loads the checkpoint, seeds SNAC's noise per chunk so that a retried chunk decodes to the same
samples, and decodes each chunk in one call, through the tiled decoder (``tiled``: SNAC's
arithmetic rearranged into cache-sized tiles) unless settings ask for the stock one. The tiled
decoder's kernels are ``snake_kernels`` (fused Snake activations, Numba) and ``products`` (matrix
products in bf16, fp32, or 12-bit integers through ``int16_gemm`` with AVX2). A live listener's
chunk is decoded as its frames arrive by ``stream`` (the tiled decoder's layers, each row once),
at the pace ``pace`` sets."""
