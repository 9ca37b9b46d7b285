#!/bin/bash
# Exits 0 when `GET http://127.0.0.1:PORT/PATH` returns status 200, else 1.
# Container health checks use it because the runtime image has no curl or
# wget. It needs only bash and its /dev/tcp redirection.
#
# Usage: seismo-http-probe PORT [PATH]   (PATH defaults to /readyz)
set -euo pipefail

port="${1:?usage: seismo-http-probe PORT [PATH]}"
path="${2:-/readyz}"

if ! exec 3<>"/dev/tcp/127.0.0.1/${port}"; then
  echo "connecting to 127.0.0.1:${port} failed" >&2
  exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3

status_line=""
IFS= read -r -t 5 status_line <&3 || true
case "$status_line" in
  "HTTP/1."[01]" 200 "*) exit 0 ;;
esac
echo "GET ${path} on 127.0.0.1:${port} returned '${status_line%$'\r'}', expected status 200" >&2
exit 1
