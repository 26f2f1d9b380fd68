#!/bin/bash
# Print the secrets Puppet generated on this instance (castelet::secret), one "name: value" per
# line, for the administrators (`nox -s secrets`). Root only: the directory is 0700.
set -euo pipefail
dir=/var/lib/castelet/secrets
[ "$(id -u)" -eq 0 ] || { echo "castelet-secrets: run as root (sudo)" >&2; exit 1; }
[ -d "$dir" ] || { echo "castelet-secrets: no secrets yet ($dir is missing)" >&2; exit 1; }
find "$dir" -maxdepth 1 -type f ! -name '.*' ! -name '*.*' -printf '%f\n' | sort | while read -r name; do
    printf '%s: %s\n' "$name" "$(head -n 1 "$dir/$name")"
done
