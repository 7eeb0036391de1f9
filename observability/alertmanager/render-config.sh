#!/bin/sh
# Renders the Alertmanager template: replaces ${VAR} for a fixed list of variables.
# POSIX sh + sed only, so it runs inside the prom/alertmanager (busybox) image.
#   render-config.sh TEMPLATE OUTPUT
# Fails when a variable is unset or empty, or contains a quote or a newline (the values are
# inserted inside single-quoted YAML scalars).
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 TEMPLATE OUTPUT" >&2
    exit 2
fi
template=$1
output=$2
[ -r "$template" ] || { echo "render-config: cannot read $template" >&2; exit 1; }

vars="SLACK_WEBHOOK_URL PAGERDUTY_ROUTING_KEY AEGIS_BACKEND_URL ALERTMANAGER_WEBHOOK_TOKEN"
script=""
for var in $vars; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "render-config: $var is not set" >&2
        exit 1
    fi
    case $value in
        *"'"* | *'
'*)
            echo "render-config: $var must not contain quotes or newlines" >&2
            exit 1
            ;;
    esac
    # Escape the sed replacement's special characters: backslash, ampersand, delimiter.
    escaped=$(printf '%s' "$value" | sed -e 's/[\\&|]/\\&/g')
    script="${script}s|\${${var}}|${escaped}|g
"
done

tmp="${output}.tmp.$$"
sed -e "$script" "$template" > "$tmp"
# shellcheck disable=SC2016 # a literal ${...} pattern
if grep -q '\${[A-Z_]*}' "$tmp"; then
    echo "render-config: unrendered placeholders left in $template:" >&2
    # shellcheck disable=SC2016
    grep -n '\${[A-Z_]*}' "$tmp" >&2
    rm -f "$tmp"
    exit 1
fi
chmod 0600 "$tmp"
mv "$tmp" "$output"
