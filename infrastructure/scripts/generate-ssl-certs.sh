#!/usr/bin/env bash
# Generates a private CA and one TLS key pair per data-tier service, with subjectAltNames
# (DNS:<service>, DNS:localhost, IP:127.0.0.1) so rustls and other modern clients accept them.
#
#   generate-ssl-certs.sh [--out DIR] [--days N] [--force]
#
# Output (default: infrastructure/ssl, git-ignored):
#   ca/ca.{crt,key}
#   postgres-{backend,ai,executor}/{server.crt,server.key,ca.crt}   mounted at /etc/postgres/ssl
#   redis/{redis.crt,redis.key,ca.crt}                              mounted at /etc/redis/ssl
#   loki/{loki.crt,loki.key,ca.crt}
# Keys are 0600 and owned by the caller; the containers' entrypoint wrappers
# (postgres/start-postgres.sh, redis/start-redis.sh) copy them to a private path with the
# ownership their server needs. Idempotent: an existing CA is kept unless --force is given.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$script_dir/../ssl"
days=365
force=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        --force) force=true; shift ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "generate-ssl-certs: unknown argument $1" >&2; exit 2 ;;
    esac
done

command -v openssl > /dev/null || { echo "generate-ssl-certs: openssl is required" >&2; exit 1; }
umask 077
mkdir -p "$out/ca"

if [[ -f $out/ca/ca.crt && $force == false ]]; then
    echo "CA exists in $out/ca (use --force to regenerate); reusing it"
else
    openssl genrsa -out "$out/ca/ca.key" 4096 2> /dev/null
    openssl req -x509 -new -key "$out/ca/ca.key" -sha256 -days "$days" \
        -subj "/C=US/ST=State/L=City/O=Aegis/OU=Infrastructure/CN=Aegis Root CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$out/ca/ca.crt"
    echo "created CA $out/ca/ca.crt"
fi

# issue NAME CERT_BASENAME
issue() {
    local name=$1 base=$2 dir="$out/$1"
    if [[ -f $dir/$base.crt && $force == false ]]; then
        echo "certificate for $name exists; skipping"
        return 0
    fi
    mkdir -p "$dir"
    local ext
    ext=$(mktemp)
    cat > "$ext" << EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$name,DNS:aegis-$name,DNS:localhost,IP:127.0.0.1
EXT
    openssl genrsa -out "$dir/$base.key" 2048 2> /dev/null
    openssl req -new -key "$dir/$base.key" -subj "/O=Aegis/OU=Infrastructure/CN=$name" \
        -out "$dir/$base.csr"
    openssl x509 -req -in "$dir/$base.csr" -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" \
        -CAcreateserial -days "$days" -sha256 -extfile "$ext" -out "$dir/$base.crt" 2> /dev/null
    rm -f "$dir/$base.csr" "$ext"
    cp "$out/ca/ca.crt" "$dir/ca.crt"
    chmod 0600 "$dir/$base.key"
    chmod 0644 "$dir/$base.crt" "$dir/ca.crt"
    echo "issued $dir/$base.crt (SAN: DNS:$name, DNS:localhost, IP:127.0.0.1)"
}

for db in postgres-backend postgres-ai postgres-executor; do
    issue "$db" server
done
issue redis redis
issue loki loki
chmod 0644 "$out/ca/ca.crt"
chmod 0600 "$out/ca/ca.key"

{
    echo "Aegis certificates generated $(date -u +%Y-%m-%dT%H:%M:%SZ), valid $days days"
    for f in "$out"/*/*.crt; do
        [[ $(basename "$f") == ca.crt && $f != "$out/ca/ca.crt" ]] && continue
        echo "== ${f#"$out"/}"
        openssl x509 -in "$f" -noout -subject -enddate -ext subjectAltName 2> /dev/null || true
    done
} > "$out/CERTIFICATE_INFO.txt"
echo "done; see $out/CERTIFICATE_INFO.txt"
