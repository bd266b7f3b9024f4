# syntax=docker/dockerfile:1.7
# Lyre's images. Two targets:
#   docker build --target cpu  -t lyre:cpu  .   # api, cpu/stitch/webhook workers, beat, flower,
#                                                # and a GPU-less gpu worker (transformers/espeak)
#   docker build --target cuda -t lyre:cuda-vllm0.33.0 .   # the gpu worker: vLLM 0.33.0, CUDA 13
# No weights are baked in: mount a volume at /models (HF_HOME) and run `lyre models pull` once.

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/lyre \
    PATH=/opt/lyre/bin:$PATH \
    HF_HOME=/models
RUN useradd --create-home --uid 10001 lyre \
 && mkdir -p /models /app \
 && chown lyre:lyre /models
WORKDIR /app

# ---------------------------------------------------------------------------------------------
FROM base AS build-cpu
RUN python -m venv /opt/lyre
# torch first, from PyTorch's CPU index: the pin in pyproject.toml then finds it satisfied.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY api ./api
COPY workers ./workers
COPY migrations ./migrations
RUN pip install .

# ---------------------------------------------------------------------------------------------
FROM base AS build-cuda
# The vLLM that shared/speech/vllm_*.py are written against: pyproject.toml's gpu extra pins
# the same version (a test checks that they agree). Its PyPI wheel is a CUDA 13 build and brings
# the CUDA torch (2.14.0) and CUDA libraries it was compiled with; the host needs only the
# NVIDIA driver (580 or newer) and the NVIDIA Container Toolkit.
ARG VLLM_VERSION=0.33.0
RUN python -m venv /opt/lyre
RUN pip install "vllm==${VLLM_VERSION}"
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY api ./api
COPY workers ./workers
COPY migrations ./migrations
# vLLM and its torch are already there and satisfy the gpu extra: pip adds only Lyre's own.
RUN pip install ".[gpu]"

# ---------------------------------------------------------------------------------------------
FROM base AS cpu
COPY --from=build-cpu /opt/lyre /opt/lyre
COPY --from=build-cpu /app /app
USER lyre
VOLUME ["/models"]
EXPOSE 8000 5555
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------------
FROM base AS cuda
# Triton compiles a small C launcher for each kernel the first time it runs ("Failed to find C
# compiler" without one): the image that runs vLLM carries gcc and the C library's headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-cuda /opt/lyre /opt/lyre
COPY --from=build-cuda /app /app
# vLLM's engine processes start with spawn (the worker is threaded); Triton's cache and vLLM's
# compiled graphs go to the models volume so that a restarted worker starts faster.
ENV LYRE_ORPHEUS__BACKEND=vllm \
    LYRE_ORPHEUS__DEVICE=cuda \
    VLLM_WORKER_MULTIPROC_METHOD=spawn \
    TRITON_CACHE_DIR=/models/.triton \
    VLLM_CACHE_ROOT=/models/.vllm
USER lyre
VOLUME ["/models"]
CMD ["celery", "-A", "workers.app", "worker", "-Q", "gpu", "--pool", "threads", "--concurrency", "64"]
