#!/usr/bin/env bash
# The KCIDB validator in a virtual environment of its own, made from ci/kcidb-requirements.txt
# with the machine's pip configuration (its package index: never named here).
#   ci/kcidb.sh venv                 make or refresh the venv; print its python
#   ci/kcidb.sh validate FILE...     validate KCIDB JSON files against the latest schema
# The venv lives in the cache ($RZGATE_CACHE/kcidb-venv), outside the work tree, and is
# rebuilt when the requirements change (their hash is stamped into it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REQUIREMENTS=$RZGATE_TOP/ci/kcidb-requirements.txt
VENV=$RZGATE_CACHE/kcidb-venv

make_venv() {
    local want have=""
    want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
    [ -f "$VENV/.rzgate-requirements" ] && have=$(cat "$VENV/.rzgate-requirements")
    if [ "$want" = "$have" ] && [ -x "$VENV/bin/python" ]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is missing (apt-get install python3)"
    # Debian splits venv and ensurepip out of python3.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "python3-venv is missing; as root: apt-get install python3-venv"
        say "installing python3-venv on the host"
        apt-get update -qq >/dev/null || die "apt-get update failed on the host"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null ||
            die "cannot install python3-venv on the host (apt-get install python3-venv failed)"
    fi
    say "making the KCIDB validator's venv in $VENV"
    # Built beside and renamed into place: an interrupted install never looks complete.
    rm -rf "$VENV.partial"
    mkdir -p "$RZGATE_CACHE"
    python3 -m venv "$VENV.partial" || die "python3 -m venv $VENV.partial failed"
    "$VENV.partial/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >"$RZGATE_CACHE/kcidb-pip.log" 2>&1 ||
        { tail -n 20 "$RZGATE_CACHE/kcidb-pip.log" >&2; die "pip install -r $REQUIREMENTS failed (log: $RZGATE_CACHE/kcidb-pip.log)"; }
    echo "$want" >"$VENV.partial/.rzgate-requirements"
    rm -rf "$VENV"
    mv "$VENV.partial" "$VENV"
    # A venv's scripts name its directory: moved, pip's shebang would be stale, but
    # `python -m` (all this script uses) does not care.
}

case "${1:-}" in
venv)
    make_venv
    echo "$VENV/bin/python"
    ;;
validate)
    shift
    [ $# -gt 0 ] || die "usage: ci/kcidb.sh validate FILE..."
    make_venv
    "$VENV/bin/python" - "$@" <<'PY'
import json, sys
import jsonschema, kcidb_io
schema = kcidb_io.schema.LATEST
status = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            doc = json.load(f)
        schema.validate(doc)
    except (OSError, ValueError, jsonschema.ValidationError) as e:
        where = "/".join(str(p) for p in getattr(e, "absolute_path", []))
        print(f"{path}: INVALID{' at ' + where if where else ''}: {getattr(e, 'message', e)}")
        status = 1
        continue
    counts = {k: len(doc.get(k, [])) for k in ("checkouts", "builds", "tests")}
    print(f"{path}: valid KCIDB v{schema.major}.{schema.minor}: "
          f"{counts['checkouts']} checkouts, {counts['builds']} builds, {counts['tests']} tests")
sys.exit(status)
PY
    ;;
*)
    die "usage: ci/kcidb.sh venv | validate FILE..."
    ;;
esac
