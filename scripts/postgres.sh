#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests and benchmarks, in a directory of its own.
#   scripts/postgres.sh start DIR   initdb into DIR (first time), start on a free loopback
#                                   port (the same one again after a stop) and a Unix socket
#                                   in DIR, with TLS whose CA is DIR/tls/ca.crt, print its URL
#   scripts/postgres.sh stop DIR    stop it (fast shutdown; the data stays)
#   scripts/postgres.sh kill DIR    stop it at once (immediate shutdown, as a crash would)
# As root, the server runs as the postgres user, since initdb refuses root.
# Exits 3 when PostgreSQL's binaries are not installed.
set -euo pipefail
cmd=${1:?start, stop or kill}
dir=${2:?a directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 3
fi
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
data="$dir/data"
case "$cmd" in
start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        # The postgres user must reach the directory: open every parent for traversal.
        p="$dir"
        while [ "$p" != / ]; do chmod o+x "$p"; p=$(dirname "$p"); done
        chown postgres "$dir"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        # Every other role is trusted; these three must authenticate, one per method a client
        # must speak (the tests create them with the password "secret").
        # provisiond_tls is let in over TLS only.
        hba="$data/pg_hba.conf"
        { printf 'host all provisiond_scram 127.0.0.1/32 scram-sha-256\n'
          printf 'host all provisiond_md5 127.0.0.1/32 md5\n'
          printf 'host all provisiond_cleartext 127.0.0.1/32 password\n'
          printf 'hostssl all provisiond_tls 127.0.0.1/32 scram-sha-256\n'
          printf 'host all provisiond_tls 127.0.0.1/32 reject\n'
          cat "$hba"; } >"$hba.new"
        as_owner cp "$hba.new" "$hba"
        rm -f "$hba.new"
        # TLS: a certificate authority of its own (DIR/tls/ca.crt, for clients to trust) and a
        # certificate for 127.0.0.1 it signed. Without openssl the server runs without TLS.
        if command -v openssl >/dev/null 2>&1; then
            tls="$dir/tls"
            mkdir -p "$tls"
            ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
            openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.crt" -days 30 \
                -subj "/CN=provisiond test CA" 2>/dev/null
            openssl req "${ec[@]}" -keyout "$tls/server.key" -out "$tls/server.csr" \
                -subj "/CN=127.0.0.1" 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/ext"
            openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
                -CAcreateserial -out "$tls/server.crt" -days 30 -extfile "$tls/ext" 2>/dev/null
            if [ "$(id -u)" = 0 ]; then chown -R postgres "$tls"; fi
            chmod 600 "$tls/server.key"
            printf "ssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\n" \
                "$tls/server.crt" "$tls/server.key" >"$data/tls.conf"
            printf "include_if_exists = 'tls.conf'\n" >>"$data/postgresql.conf"
        fi
    fi
    if [ ! -f "$dir/port" ]; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    port=$(cat "$dir/port")
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir' -c max_connections=300 -c fsync=on" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
stop)
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
kill)
    as_owner "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
*)
    echo "postgres.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
