#!/usr/bin/env bash
# set-images.sh OVERLAY_APP_DIR REGISTRY_PREFIX TAG — pins the four Aegis images in an overlay
# (kustomize edit set image, inside the overlay, never in the base).
set -euo pipefail
dir=$1 prefix=$2 tag=$3
[[ -n $tag ]] || { echo "set-images: empty tag" >&2; exit 1; }
cd "$dir"
for svc in backend ai-engine executor backup; do
    kustomize edit set image "aegis/$svc=$prefix/aegis-$svc:$tag"
done
