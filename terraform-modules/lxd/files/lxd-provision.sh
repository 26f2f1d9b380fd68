#!/bin/bash
# Converge one LXD instance (run by terraform_data.provision through local-exec):
#   1. wait for the first boot (cloud-init + castelet-bootstrap);
#   2. push the Puppet environment and this node's hieradata, install them, run Puppet
#      (castelet-bootstrap again when the first boot did not finish).
# On failure, print the failing step and the tail of its log, and exit non-zero.
set -uo pipefail

host="${CASTELET_HOST:?}"
environment="${CASTELET_ENVIRONMENT:?}"
timeout="${CASTELET_CONVERGE_TIMEOUT:-1800}"
staging=/root/.castelet-staging

report_failure() {
    echo "castelet: ${host}: $1" >&2
    lxc exec "$host" -- cat /var/lib/castelet/status >&2 2>/dev/null || true
    log=$(lxc exec "$host" -- sed -n 's/^log=//p' /var/lib/castelet/status 2>/dev/null)
    if [ -n "$log" ]; then
        echo "--- last lines of ${log} ---" >&2
        lxc exec "$host" -- tail -n 40 "$log" >&2 || true
        # Last: Terraform keeps only the end of a provisioner's output in its error message.
        echo "--- errors in ${log} ---" >&2
        lxc exec "$host" -- grep '^Error: ' "$log" 2>/dev/null | tail -n 10 >&2 || true
    fi
    exit 1
}

# The container may still be starting its init system.
for _ in $(seq 1 60); do
    lxc exec "$host" -- test -x /usr/bin/cloud-init 2>/dev/null && break
    sleep 1
done

if ! timeout "$timeout" lxc exec "$host" -- cloud-init status --wait >/dev/null; then
    echo "castelet: ${host}: first boot reported an error; retrying it after pushing the environment" >&2
fi

lxc exec "$host" -- rm -rf "$staging" || report_failure "cannot reach the container"
lxc exec "$host" -- mkdir -p "$staging"
lxc file push --recursive "$environment" "${host}${staging}/" >/dev/null \
    && lxc exec "$host" -- mv "${staging}/$(basename "$environment")" "${staging}/environment" \
    || report_failure "pushing the Puppet environment failed"
printf '%s' "${CASTELET_HIERADATA:-}" | lxc file push - "${host}${staging}/terraform.yaml" \
    || report_failure "pushing the hieradata failed"
lxc exec "$host" -- /usr/local/sbin/castelet-install-environment "$staging" \
    || report_failure "installing the Puppet environment failed"
lxc exec "$host" -- rm -rf "$staging"

if lxc exec "$host" -- test -e /var/lib/castelet/bootstrap.done; then
    lxc exec "$host" -- /usr/local/sbin/castelet-puppet-apply || report_failure "puppet apply failed"
else
    lxc exec "$host" -- /usr/local/sbin/castelet-bootstrap || report_failure "bootstrap failed"
fi
echo "castelet: ${host}: converged"
