#!/usr/bin/env bash
# Another CPython from Debian's archive, in a chroot under .cache/, for the Python matrix
# of `make test` (scripts/matrix.sh). Needs root, debootstrap and Debian's archive.
#
#   scripts/chroot.sh build NAME   # .cache/NAME: the debootstrap, then a venv with the
#                                  # package (editable, all extras) and the pinned dev tools
#   scripts/chroot.sh run NAME CMD...  # CMD inside it, in this checkout, with the venv first
#   scripts/chroot.sh tools NAME   # adds valgrind from the chroot's own Debian, for the
#                                  # benchmarks' instruction counts (not part of `build`)
#
# NAME is one of the chroots below (py313: trixie, Python 3.13; py314: forky, Python 3.14).
# Building is idempotent: a chroot whose stamp matches is reused as it is, and the venv is
# reinstalled only when pyproject.toml, the requirements or the constraints change (or
# when the checkout moves). Each checkout has its own venv inside (/venvs/<hash of its
# path>: an editable install points at one checkout), so worktrees share a chroot. Anything that fails makes the script fail: a chroot that cannot
# be built stops the run, it is never skipped.
#
# Inside, the checkout is bind-mounted at the same path as on the host, so paths in
# the tests and in tracebacks match; /proc and /dev (with /dev/shm) are bind-mounted for
# the time of one `run` and always unmounted afterwards, also on failure or interrupt.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="/venvs/$(printf %s "$ROOT" | sha256sum | cut -c1-12)"
# The Debian archive the host's apt uses (its first deb822 URIs or sources.list line),
# unless DEBIAN_MIRROR names another.
host_mirror() {
    local found
    found=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2; exit}')
    [ -n "$found" ] || found=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2; exit}')
    printf %s "$found"
}
MIRROR="${DEBIAN_MIRROR:-$(host_mirror)}"
if [ -z "$MIRROR" ]; then
    echo "no Debian archive found in the host's apt sources: set DEBIAN_MIRROR" >&2
    exit 1
fi
# Bump when the recipe below changes, so that existing chroots are rebuilt.
RECIPE=1
PACKAGES=python3,python3-venv,python3-dev,ca-certificates

suite_of() {
    case "$1" in
    py313) echo trixie ;;
    py314) echo forky ;;
    *)
        echo "unknown chroot '$1' (known: py313 py314)" >&2
        return 1
        ;;
    esac
}

die() {
    echo "chroot.sh: $*" >&2
    exit 1
}

# The host's CA bundle, resolver and pip configuration, so that pip inside installs from
# wherever the host's pip does. Copied at every build and run: cheap, and always current.
copy_host_config() {
    local dir="$1" file
    for file in /etc/ssl/certs/ca-certificates.crt /etc/resolv.conf /etc/pip.conf; do
        [ -f "$file" ] || continue
        mkdir -p "$dir$(dirname "$file")"
        cp -L "$file" "$dir$file"
    done
    # pip's site configuration and the constraint file it names (pip config list).
    if [ -d /etc/xdg/pip ]; then
        mkdir -p "$dir/etc/xdg"
        rm -rf "$dir/etc/xdg/pip"
        cp -rL /etc/xdg/pip "$dir/etc/xdg/pip"
    fi
}

# Refuse to delete a tree that still has something mounted inside (a run killed with
# SIGKILL, or debootstrap's own /proc): rm -rf would go through a bind mount into the
# checkout or /dev.
assert_nothing_mounted() {
    local path
    path="$(realpath -m "$1")"
    if findmnt -rn -o TARGET | grep -q "^$path\(/\|$\)"; then
        findmnt -rn -o TARGET | grep "^$path\(/\|$\)" >&2
        die "still mounted under $path (above): umount -R them, then run again"
    fi
}

MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount -R "${MOUNTED[$i]}" 2>/dev/null || umount -lR "${MOUNTED[$i]}" || true
    done
    MOUNTED=()
}

mount_all() {
    local dir="$1"
    trap unmount_all EXIT
    trap 'unmount_all; exit 130' INT TERM
    mkdir -p "$dir/proc" "$dir/dev" "$dir$ROOT"
    mount -t proc proc "$dir/proc"
    MOUNTED+=("$dir/proc")
    mount --rbind /dev "$dir/dev"
    mount --make-rslave "$dir/dev"
    MOUNTED+=("$dir/dev")
    mount --bind "$ROOT" "$dir$ROOT"
    MOUNTED+=("$dir$ROOT")
    # A worktree's .cache may be a symlink to a shared one: mount that at its own path.
    if [ -L "$ROOT/.cache" ]; then
        local cache
        cache="$(readlink -f "$ROOT/.cache")"
        mkdir -p "$dir$cache"
        mount --bind "$cache" "$dir$cache"
        MOUNTED+=("$dir$cache")
    fi
}

# Run a command inside with a clean environment: the host's PIP_*/proxy variables name
# host paths that do not exist in the chroot.
in_chroot() {
    local dir="$1"
    shift
    chroot "$dir" /usr/bin/env -i \
        HOME=/root LANG=C.UTF-8 PATH="$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
        TERM="${TERM:-dumb}" CI="${CI:-}" \
        "$@"
}

# What the venv was made from: when any of it changes, the venv is made again.
venv_key() {
    cat "$ROOT/pyproject.toml" "$ROOT/requirements-dev.txt" "$ROOT/constraints/dev.txt" |
        sha256sum | cut -c1-16
    echo "$ROOT"
}

build() {
    local name="$1" suite dir stamp
    suite="$(suite_of "$name")"
    dir="$ROOT/.cache/$name"
    stamp="$dir/.chroot-recipe"
    [ "$(id -u)" = 0 ] || die "building a chroot needs root"
    # One build at a time per chroot (another checkout may share .cache).
    mkdir -p "$ROOT/.cache"
    exec 9>"$dir.lock"
    flock 9

    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$suite $RECIPE" ]; then
        echo "chroot $name ($suite): present"
    else
        if ! command -v debootstrap >/dev/null; then
            echo "chroot $name: installing debootstrap"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        fi
        local script=""
        # Bookworm's debootstrap has no script for forky: sid's fits the next release.
        if [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
            script=/usr/share/debootstrap/scripts/sid
        fi
        echo "chroot $name: debootstrap $suite into .cache/$name (about a minute)"
        assert_nothing_mounted "$dir.partial"
        rm -rf "$dir.partial"
        if ! debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$dir.partial" \
            "$MIRROR" $script >"$dir.debootstrap.log" 2>&1; then
            tail -n 20 "$dir.debootstrap.log" >&2
            die "debootstrap $suite failed (whole log: $dir.debootstrap.log)"
        fi
        assert_nothing_mounted "$dir"
        rm -rf "$dir"
        mv "$dir.partial" "$dir"
        echo "$suite $RECIPE" >"$stamp"
    fi

    copy_host_config "$dir"
    local key
    key="$(venv_key)"
    if [ -f "$dir$VENV/.key" ] && [ "$(cat "$dir$VENV/.key")" = "$key" ]; then
        echo "chroot $name: venv present ($(in_chroot "$dir" "$VENV/bin/python" -V))"
        return
    fi
    echo "chroot $name: installing the package and the dev tools into $VENV"
    rm -rf "$dir$VENV"
    mount_all "$dir"
    in_chroot "$dir" python3 -m venv "$VENV"
    in_chroot "$dir" "$VENV/bin/python" -m pip install --quiet --upgrade pip
    in_chroot "$dir" "$VENV/bin/python" -m pip install --quiet \
        -c "$ROOT/constraints/dev.txt" -e "$ROOT[all]" -r "$ROOT/requirements-dev.txt"
    unmount_all
    trap - EXIT INT TERM
    echo "$key" >"$dir$VENV/.key"
    echo "chroot $name: ready ($(in_chroot "$dir" "$VENV/bin/python" -V))"
}

# Valgrind for `python -m benchmarks.peers --mode instructions` inside the chroot, from
# its own Debian (the host's valgrind cannot run the chroot's Python). Kept out of `build`
# so that the matrix does not wait for it; idempotent, and it only adds packages.
TOOLS=valgrind

tools() {
    local name="$1" dir
    suite_of "$name" >/dev/null
    dir="$ROOT/.cache/$name"
    [ -f "$dir/.chroot-recipe" ] || die "chroot $name is not built: scripts/chroot.sh build $name"
    [ "$(id -u)" = 0 ] || die "adding tools to a chroot needs root"
    exec 9>"$dir.lock"
    flock 9
    if [ -x "$dir/usr/bin/valgrind" ]; then
        echo "chroot $name: $TOOLS present"
        return
    fi
    echo "chroot $name: installing $TOOLS from its Debian archive"
    copy_host_config "$dir"
    mount_all "$dir"
    # The archive of a release still in development (forky) may carry an expired Release
    # file; the host's apt is set up the same way.
    in_chroot "$dir" apt-get -qq -o Acquire::Check-Valid-Until=false update
    in_chroot "$dir" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $TOOLS >/dev/null
    echo "chroot $name: $TOOLS ready ($(in_chroot "$dir" valgrind --version))"
    unmount_all
    trap - EXIT INT TERM
}

run() {
    local name="$1" dir
    shift
    suite_of "$name" >/dev/null
    dir="$ROOT/.cache/$name"
    [ -f "$dir$VENV/.key" ] || die "chroot $name is not built: scripts/chroot.sh build $name"
    [ "$(id -u)" = 0 ] || die "running in a chroot needs root"
    copy_host_config "$dir"
    mount_all "$dir"
    local status=0
    in_chroot "$dir" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$ROOT" "$@" || status=$?
    unmount_all
    trap - EXIT INT TERM
    return "$status"
}

case "${1:-}" in
build)
    [ $# = 2 ] || die "usage: $0 build NAME"
    build "$2"
    ;;
run)
    [ $# -ge 3 ] || die "usage: $0 run NAME CMD..."
    name="$2"
    shift 2
    run "$name" "$@"
    ;;
tools)
    [ $# = 2 ] || die "usage: $0 tools NAME"
    tools "$2"
    ;;
*) die "usage: $0 build NAME | run NAME CMD... | tools NAME" ;;
esac
