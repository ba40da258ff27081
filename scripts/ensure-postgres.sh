#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use is reachable at
# postgresql://postgres@127.0.0.1:5432/test: installs the server if missing,
# starts the cluster if stopped, allows the local postgres user, creates "test".
set -euo pipefail

pg_ok() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "==> installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

if ! pg_ok; then
    ver=$(ls /etc/postgresql | sort -V | tail -n1)
    if [ -z "$ver" ]; then
        echo "error: no PostgreSQL cluster found under /etc/postgresql" >&2
        echo "next: run 'pg_createcluster <version> main' and re-run this script" >&2
        exit 1
    fi
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
        # Tests connect as postgres over TCP without a password.
        sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    fi
    echo "==> starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
        || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload 2>/dev/null || true
    for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
fi
pg_ok || { echo "error: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname='test'")" != "1" ]; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test'
fi
echo "==> PostgreSQL ready at postgresql://postgres@127.0.0.1:5432/test"
