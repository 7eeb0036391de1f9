#!/usr/bin/env bash
# The console's first load per page: bytes transferred (the document, the style sheet and the
# script) and the time from the request to the load event, in a real headless Chromium against
# a local backend (debug build, as the test suite builds it). Targets: under 200 KB and under
# 300 ms. Needs chromium and chromedriver (scripts/prepare-test-env.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run -p aegis-backend --test api --run-ignored only --no-capture \
    -E 'test(console_first_load_weight_and_render_time)' 2>&1 |
    awk -F'\t' '/^page\t/ { print; on = 1; next } on && /^\/console/ { print; if ($2 > 200 * 1024 || $3 > 300) bad = 1 }
                END { if (bad) { print "over target (200 KB, 300 ms)"; exit 1 } }'
