# castelet status helpers, sourced by castelet-bootstrap and castelet-puppet-apply.
# Every path can be overridden through the environment (the test suite runs these
# scripts in a sandbox); the defaults are the paths used on a deployed instance.

CASTELET_STATE_DIR="${CASTELET_STATE_DIR:-/var/lib/castelet}"
CASTELET_LOG_DIR="${CASTELET_LOG_DIR:-/var/log/castelet}"
CASTELET_MOTD="${CASTELET_MOTD:-/etc/motd}"
CASTELET_STATUS_FILE="${CASTELET_STATE_DIR}/status"
CASTELET_HISTORY_FILE="${CASTELET_STATE_DIR}/history"

castelet_now() {
    date -u +%Y-%m-%dT%H:%M:%SZ
}

castelet_init_dirs() {
    mkdir -p "$CASTELET_STATE_DIR" "$CASTELET_LOG_DIR"
    chmod 0755 "$CASTELET_STATE_DIR" "$CASTELET_LOG_DIR" 2>/dev/null || true
}

# castelet_record STATE STEP EXIT_CODE LOG
# Rewrites the status file atomically (key=value lines) and appends one history line.
castelet_record() {
    local state="$1" step="$2" code="$3" log="$4" now tmp
    now="$(castelet_now)"
    tmp="${CASTELET_STATUS_FILE}.tmp.$$"
    {
        printf 'state=%s\n' "$state"
        printf 'step=%s\n' "$step"
        printf 'exit_code=%s\n' "$code"
        printf 'time=%s\n' "$now"
        printf 'log=%s\n' "$log"
    } >"$tmp"
    mv -f "$tmp" "$CASTELET_STATUS_FILE"
    printf '%s %s %s exit_code=%s log=%s\n' "$now" "$state" "$step" "$code" "$log" >>"$CASTELET_HISTORY_FILE"
}

# castelet_fail STEP EXIT_CODE LOG: record the failure, tell whoever logs in, say it on stderr.
castelet_fail() {
    local step="$1" code="$2" log="$3" line
    castelet_record failed "$step" "$code" "$log"
    line="castelet: step '${step}' FAILED with exit code ${code} at $(castelet_now); see ${log} and ${CASTELET_STATUS_FILE}"
    printf '%s\n' "$line" >>"$CASTELET_MOTD"
    printf '%s\n' "$line" >&2
    if [ -s "$log" ]; then
        printf -- '--- last lines of %s ---\n' "$log" >&2
        tail -n 20 "$log" >&2 || true
        # Last, so they survive when a caller keeps only the end of this output (Terraform does).
        if grep -q '^Error: ' "$log"; then
            printf -- '--- errors in %s ---\n' "$log" >&2
            grep '^Error: ' "$log" | tail -n 10 >&2 || true
        fi
    fi
}

# castelet_clear_motd: drop the failure lines of earlier runs once a run succeeds.
castelet_clear_motd() {
    if [ -f "$CASTELET_MOTD" ] && grep -q '^castelet: ' "$CASTELET_MOTD"; then
        local tmp="${CASTELET_MOTD}.castelet.$$"
        grep -v '^castelet: ' "$CASTELET_MOTD" >"$tmp" || true
        cat "$tmp" >"$CASTELET_MOTD"
        rm -f "$tmp"
    fi
}
