#!/usr/bin/env bash
# Print a PostgreSQL URL the test suite can use, starting a server if none answers.
#   1. PASA_TEST_POSTGRES_URL if set;
#   2. else a server on 127.0.0.1:5432 that accepts the postgres user;
#   3. else install Debian's postgresql, start a cluster and give postgres a password.
# Progress goes to stderr; only the URL goes to stdout.
set -euo pipefail

if [ -n "${PASA_TEST_POSTGRES_URL:-}" ]; then
  echo "$PASA_TEST_POSTGRES_URL"
  exit 0
fi

try_url() {
  "${PYTHON:-python3}" - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

for url in "postgresql://postgres@127.0.0.1:5432/postgres" \
           "postgresql://postgres:pasa@127.0.0.1:5432/postgres"; do
  if try_url "$url"; then echo "$url"; exit 0; fi
done

echo "ensure-postgres: no PostgreSQL answers on 127.0.0.1:5432; installing one" >&2
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if [ -z "$version" ]; then
  echo "ensure-postgres: postgresql installed but no cluster found" >&2
  exit 1
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'pasa'\"" >&2
url="postgresql://postgres:pasa@127.0.0.1:5432/postgres"
if try_url "$url"; then echo "$url"; exit 0; fi
echo "ensure-postgres: started PostgreSQL $version but cannot connect as postgres" >&2
exit 1
