#!/bin/sh
# Entrypoint wrapper for the postgres:16-alpine containers. When SSL_ENABLED=true it copies the
# server key pair from the read-only mount (/etc/postgres/ssl) to a private directory owned by
# the postgres user (uid 70 in the alpine image) and turns ssl on; then it hands over to the
# image's entrypoint with the tuning flags given as arguments.
set -eu

if [ "${SSL_ENABLED:-true}" = "true" ]; then
    src=/etc/postgres/ssl
    dst=/var/lib/postgresql/ssl
    for f in server.crt server.key ca.crt; do
        if [ ! -r "$src/$f" ]; then
            echo "start-postgres: $src/$f is missing; run infrastructure/scripts/generate-ssl-certs.sh" >&2
            exit 1
        fi
    done
    mkdir -p "$dst"
    cp "$src/server.crt" "$src/server.key" "$src/ca.crt" "$dst/"
    chown -R postgres:postgres "$dst"
    chmod 0600 "$dst/server.key"
    set -- "$@" -c ssl=on \
        -c "ssl_cert_file=$dst/server.crt" \
        -c "ssl_key_file=$dst/server.key" \
        -c "ssl_ca_file=$dst/ca.crt"
fi
exec docker-entrypoint.sh postgres "$@"
