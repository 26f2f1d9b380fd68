#!/bin/bash
# castelet-puppet-apply: apply the production Puppet environment (masterless).
#
# Mounts the data volumes first (castelet-volumes mount: step "volumes"), then runs
# `puppet apply --detailed-exitcodes` on the environment's manifests/site.pp and logs to
# $CASTELET_LOG_DIR/puppet-apply.log. Exit codes 0 (no change) and 2 (changes) are success;
# 4 and 6 (failed resources) and anything else are failures, recorded in
# $CASTELET_STATE_DIR/status and the MOTD like every castelet-bootstrap step. Exits 0 on
# success and with Puppet's exit code on failure. Extra arguments go to `puppet apply`.
set -u
set -o pipefail

CASTELET_LIB_DIR="${CASTELET_LIB_DIR:-/usr/local/lib/castelet}"
# shellcheck source=SCRIPTDIR/castelet-status.sh
. "${CASTELET_LIB_DIR}/castelet-status.sh"

CASTELET_ENVIRONMENT="${CASTELET_ENVIRONMENT:-production}"
CASTELET_ENVIRONMENT_DIR="${CASTELET_ENVIRONMENT_DIR:-/etc/puppet/code/environments/${CASTELET_ENVIRONMENT}}"
CASTELET_PUPPET="${CASTELET_PUPPET:-puppet}"

step=puppet-apply
castelet_init_dirs
log="${CASTELET_LOG_DIR}/${step}.log"

# Serialise runs (cloud-init's first run and a day-2 run pushed over SSH).
exec 9>"${CASTELET_STATE_DIR}/puppet-apply.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

# The data volumes first: Puppet's compilation already reads and creates the secrets, which must
# land on the volume (castelet-volumes binds /var/lib/castelet/secrets from it), never the root disk.
CASTELET_VOLUMES="${CASTELET_VOLUMES:-/usr/local/sbin/castelet-volumes}"
if [ -x "$CASTELET_VOLUMES" ]; then
    volumes_log="${CASTELET_LOG_DIR}/volumes.log"
    castelet_record running volumes - "$volumes_log"
    printf '=== %s: castelet-volumes mount\n' "$(castelet_now)" >>"$volumes_log"
    "$CASTELET_VOLUMES" --hieradata "${CASTELET_ENVIRONMENT_DIR}/data/terraform.yaml" mount >>"$volumes_log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        castelet_fail volumes "$rc" "$volumes_log"
        exit "$rc"
    fi
    castelet_record "done" volumes 0 "$volumes_log"
fi

castelet_record running "$step" - "$log"
{
    printf '=== %s: puppet apply --environment %s %s/manifests/site.pp\n' \
        "$(castelet_now)" "$CASTELET_ENVIRONMENT" "$CASTELET_ENVIRONMENT_DIR"
} >>"$log"

if ! command -v "$CASTELET_PUPPET" >/dev/null 2>&1; then
    printf 'puppet is not installed: run castelet-bootstrap first\n' >>"$log"
    castelet_fail "$step" 127 "$log"
    exit 127
fi

"$CASTELET_PUPPET" apply --detailed-exitcodes --color=false \
    --environment "$CASTELET_ENVIRONMENT" \
    "$@" "${CASTELET_ENVIRONMENT_DIR}/manifests/site.pp" >>"$log" 2>&1
rc=$?

case "$rc" in
    0 | 2)
        castelet_record "done" "$step" "$rc" "$log"
        castelet_clear_motd
        exit 0
        ;;
    *)
        castelet_fail "$step" "$rc" "$log"
        exit "$rc"
        ;;
esac
