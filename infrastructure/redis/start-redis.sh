#!/bin/sh
# Entrypoint wrapper for the redis:7-alpine container: copies the TLS material from the
# read-only mount (/etc/redis/ssl, files owned by the host user) to /run/redis-tls owned by the
# redis user, then starts the server with the mounted redis.conf and the password from the
# environment.
set -eu

: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
src=/etc/redis/ssl
dst=/run/redis-tls
for f in redis.crt redis.key ca.crt; do
    if [ ! -r "$src/$f" ]; then
        echo "start-redis: $src/$f is missing; run infrastructure/scripts/generate-ssl-certs.sh" >&2
        exit 1
    fi
done
mkdir -p "$dst"
cp "$src/redis.crt" "$src/redis.key" "$src/ca.crt" "$dst/"
chown -R redis:redis "$dst"
chmod 0600 "$dst/redis.key"
exec docker-entrypoint.sh redis-server /usr/local/etc/redis/redis.conf --requirepass "$REDIS_PASSWORD"
