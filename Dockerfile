# syntax=docker/dockerfile:1.7
# Lyre's images. Two targets:
#   docker build --target cpu  -t lyre:cpu  .   # api, cpu/stitch/webhook workers, beat, flower,
#                                                # and a GPU-less gpu worker (transformers/espeak)
#   docker build --target cuda -t lyre:cuda .   # the gpu worker with vLLM and its CUDA torch
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
RUN python -m venv /opt/lyre
# vLLM brings the CUDA build of torch it was compiled against; Lyre's own dependencies are
# installed beside it without letting pip swap that torch for the CPU pin.
RUN pip install "vllm>=0.8"
COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY api ./api
COPY workers ./workers
COPY migrations ./migrations
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/deps.txt \
 && pip install -r /tmp/deps.txt \
 && pip install --no-deps .

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
COPY --from=build-cuda /opt/lyre /opt/lyre
COPY --from=build-cuda /app /app
ENV LYRE_ORPHEUS__BACKEND=vllm \
    LYRE_ORPHEUS__DEVICE=cuda
USER lyre
VOLUME ["/models"]
CMD ["celery", "-A", "workers.app", "worker", "-Q", "gpu", "--pool", "threads", "--concurrency", "64"]
