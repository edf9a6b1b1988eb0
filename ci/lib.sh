# Shared shell helpers for ci/*.sh and the Makefile. Source it; do not run it.
# Paths: the cache (toolchain root, kernel trees) lives outside the work tree so that
# clean clones and CI runs reuse it; OUT holds everything a run produces.

RZGATE_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RZGATE_CACHE=${RZGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rzgate}
OUT=${OUT:-$RZGATE_TOP/out}
ROOT=${RZGATE_ROOT:-$RZGATE_CACHE/root-trixie}
TOOLBIN=$RZGATE_CACHE/bin

die() {
    echo "rzgate: error: $*" >&2
    exit 1
}

say() {
    echo "rzgate: $*" >&2
}

# The Debian mirror the host already uses (deb822 .sources first, then sources.list).
# Never hard-code a registry host: the machine's apt configuration is the authority.
host_debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # Paragraph mode: the first stanza of type deb that is not a security suite.
        uri=$(awk 'BEGIN { RS = "" } /(^|\n)Types:[^\n]*deb/ && !/Suites:[^\n]*security/ {
                     if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit } }' "$f")
        if [ -n "$uri" ]; then echo "${uri%/}"; return 0; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' "$f" | head -n1)
        if [ -n "$uri" ] && [[ "$uri" != *cloud* ]]; then echo "${uri%/}"; return 0; fi
    done
    return 1
}

# Run a command inside the Debian 13 root (the kernel builds there).
in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
