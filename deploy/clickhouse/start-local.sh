#!/usr/bin/env bash
# Makes sure a ClickHouse server responds at CLICKHOUSE_URL (default
# http://127.0.0.1:8123) for local runs, the demo and CI.
#
# - A server that already responds is used as it is.
# - Otherwise, on Debian or Ubuntu as root, clickhouse-server is installed from
#   the distribution's packages when missing, then started in the background.
# - Anywhere else the script prints what to do and exits with status 1.
set -euo pipefail

url="${CLICKHOUSE_URL:-http://127.0.0.1:8123}"
wait_seconds="${CLICKHOUSE_START_TIMEOUT:-60}"
log_dir="${CLICKHOUSE_LOG_DIR:-/var/log/clickhouse-server}"

responds() {
  curl -fsS --max-time 2 "$url/ping" >/dev/null 2>&1
}

if responds; then
  echo "ClickHouse answers at $url"
  exit 0
fi

# The distribution's server listens on 8123, so starting it helps only for
# that port.
case "$url" in
  http://127.0.0.1:8123|http://127.0.0.1:8123/|http://localhost:8123|http://localhost:8123/) ;;
  *)
    echo "ClickHouse does not respond at $url; start a server there, or set CLICKHOUSE_URL to one that runs (a local server is started only for http://127.0.0.1:8123)" >&2
    exit 1
    ;;
esac

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<MSG
ClickHouse does not answer at $url.
Start a ClickHouse server there (see https://clickhouse.com/docs/en/install),
for example with Docker:
  docker run -d -p 8123:8123 --name clickhouse clickhouse/clickhouse-server
or set CLICKHOUSE_URL to a server that runs. On Debian or Ubuntu, running this
script as root installs and starts the distribution's clickhouse-server.
MSG
  exit 1
fi

if ! command -v clickhouse-server >/dev/null 2>&1; then
  echo "Installing clickhouse-server from the distribution's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
fi

echo "Starting clickhouse-server (log: $log_dir/clickhouse-server.log)"
mkdir -p "$log_dir"
chown clickhouse "$log_dir" 2>/dev/null || true
nohup runuser -u clickhouse -- clickhouse-server --config-file=/etc/clickhouse-server/config.xml \
  >"$log_dir/stdout.log" 2>&1 &

for _ in $(seq "$wait_seconds"); do
  if responds; then
    echo "ClickHouse $(curl -fsS "$url/?query=SELECT%20version()") answers at $url"
    exit 0
  fi
  sleep 1
done

echo "clickhouse-server did not respond at $url within $wait_seconds s; see $log_dir/clickhouse-server.log" >&2
exit 1
