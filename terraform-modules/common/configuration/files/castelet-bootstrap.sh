#!/bin/bash
# castelet-bootstrap: first configuration of a Castelet instance, run by cloud-init (runcmd).
#
# Steps: apt-update, apt-install (Debian's puppet-agent and puppet-module-* packages),
# puppet-apply (castelet-puppet-apply). The Puppet environment is not in the user-data: until
# the provision step (Terraform, over SSH or `lxc exec`) has installed it, the script records
# state=waiting step=environment and exits 0; the provision step runs it again, which skips the
# packages already installed. Each step logs to $CASTELET_LOG_DIR/<step>.log and
# its outcome is written to $CASTELET_STATE_DIR/status (key=value: state, step, exit_code,
# time, log) and appended to $CASTELET_STATE_DIR/history. A failing step appends a
# "castelet: step '<step>' FAILED ..." line to /etc/motd and makes this script exit non-zero,
# so `cloud-init status` reports an error. $CASTELET_STATE_DIR/bootstrap.done marks success.
set -u
set -o pipefail

CASTELET_LIB_DIR="${CASTELET_LIB_DIR:-/usr/local/lib/castelet}"
CASTELET_CONFIG="${CASTELET_CONFIG:-/etc/castelet/bootstrap.conf}"
# shellcheck source=SCRIPTDIR/castelet-status.sh
. "${CASTELET_LIB_DIR}/castelet-status.sh"

CASTELET_PACKAGES="${CASTELET_PACKAGES:-}"
if [ -r "$CASTELET_CONFIG" ]; then
    # shellcheck disable=SC1090
    . "$CASTELET_CONFIG"
fi
CASTELET_PUPPET_APPLY="${CASTELET_PUPPET_APPLY:-/usr/local/sbin/castelet-puppet-apply}"
CASTELET_ENVIRONMENT_DIR="${CASTELET_ENVIRONMENT_DIR:-/etc/puppet/code/environments/production}"
CASTELET_RETRIES="${CASTELET_RETRIES:-3}"
CASTELET_RETRY_DELAY="${CASTELET_RETRY_DELAY:-15}"

export DEBIAN_FRONTEND=noninteractive

# run_step NAME COMMAND...: run COMMAND (retried for transient failures), log and record it.
run_step() {
    local step="$1" log attempt=1 rc=0
    shift
    log="${CASTELET_LOG_DIR}/${step}.log"
    castelet_record running "$step" - "$log"
    : >"$log"
    while :; do
        printf '=== %s: %s (attempt %s/%s)\n' "$(castelet_now)" "$*" "$attempt" "$CASTELET_RETRIES" >>"$log"
        "$@" >>"$log" 2>&1
        rc=$?
        if [ "$rc" -eq 0 ] || [ "$attempt" -ge "$CASTELET_RETRIES" ]; then
            break
        fi
        attempt=$((attempt + 1))
        sleep "$CASTELET_RETRY_DELAY"
    done
    if [ "$rc" -ne 0 ]; then
        castelet_fail "$step" "$rc" "$log"
        exit "$rc"
    fi
    castelet_record "done" "$step" 0 "$log"
}

# shellcheck disable=SC2317 # invoked indirectly through run_step
apt_install() {
    # shellcheck disable=SC2086 # the package list is split on purpose
    apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        $CASTELET_PACKAGES || return $?
    # The packaged agent daemon would poll a Puppet server that does not exist: Castelet is
    # masterless. Best effort only (no systemd in some containers).
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now puppet.service >/dev/null 2>&1 || true
    fi
    return 0
}

castelet_init_dirs
rm -f "${CASTELET_STATE_DIR}/bootstrap.done"

if [ -z "$CASTELET_PACKAGES" ]; then
    castelet_fail configuration 78 "$CASTELET_CONFIG"
    exit 78
fi

packages_done="${CASTELET_STATE_DIR}/packages.done"
if [ "$(cat "$packages_done" 2>/dev/null)" != "$CASTELET_PACKAGES" ]; then
    run_step apt-update apt-get update -q -o DPkg::Lock::Timeout=300
    run_step apt-install apt_install
    printf '%s' "$CASTELET_PACKAGES" >"$packages_done"
fi

if [ ! -f "${CASTELET_ENVIRONMENT_DIR}/manifests/site.pp" ]; then
    castelet_record waiting environment 0 "-"
    echo "castelet-bootstrap: packages installed; waiting for the Puppet environment (Terraform's provision step pushes it)"
    exit 0
fi

# castelet-puppet-apply records its own step (puppet-apply) in the status file and the MOTD.
"$CASTELET_PUPPET_APPLY"
rc=$?
if [ "$rc" -ne 0 ]; then
    exit "$rc"
fi

castelet_record "done" bootstrap 0 "$CASTELET_LOG_DIR"
castelet_clear_motd
date -u +%Y-%m-%dT%H:%M:%SZ >"${CASTELET_STATE_DIR}/bootstrap.done"
exit 0
