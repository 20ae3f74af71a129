#!/usr/bin/env bash
# Create snncc's two Python environments (docs/architecture.md, "Two Python environments"):
#
#   .venv          compile env, Python >= 3.11: snncc[torch,dev], pinned by constraints/compile.txt
#   .venv-runtime  runtime env, Python 3.10: lava-nc, PyNN, sPyNNaker, Brian2 and the snncc core
#                  (no torch), pinned by constraints/runtime.txt
#
# Two environments because lava-nc 0.10.0 (the last release) only runs on Python 3.10, while the
# frontend wants a current torch. The compile side reaches the runtime side only through a
# subprocess (snncc/runtime/bridge.py).
#
# Idempotent: each environment has a stamp file (.setup-stamp-compile, .setup-stamp-runtime)
# holding a hash of its constraint file, this script and the interpreter, and one of
# pyproject.toml. When both match and the venv's python runs, the environment is left alone (a
# second run takes about a second). When only pyproject.toml changed, snncc is reinstalled into
# the venv (seconds). Otherwise the venv is deleted and rebuilt from the pins, so it never keeps
# packages that the pins no longer name.
#
# Usage:
#   scripts/setup.sh           create or refresh both environments (what `make setup` runs)
#   scripts/setup.sh --lock    re-resolve the top-level requirements below in throw-away venvs and
#                              rewrite constraints/*.txt from `pip freeze` (then run it again)
#
# Interpreters:
#   runtime (3.10): $SNNCC_RUNTIME_PYTHON, else python3.10 on PATH, else `pyenv prefix 3.10`
#   compile (3.11+): $SNNCC_PYTHON, else python3.11, else python3
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COMPILE_VENV=.venv
RUNTIME_VENV=.venv-runtime
COMPILE_PINS=constraints/compile.txt
# Test-only packages installed with --no-deps, pinned by hand: their declared requirements are
# not needed for what snncc uses and would drag in more (SpikingJelly 2.0.0 requires
# torchvision, torchaudio and tensorboard, which could replace the pinned torch).
COMPILE_NODEPS=constraints/compile-nodeps.txt
RUNTIME_PINS=constraints/runtime.txt

# Top-level requirements. Only --lock reads these; a normal run installs the frozen closure.
COMPILE_TOP=("torch==2.13.0" numpy networkx onnx nir h5py rich scikit-learn tqdm matplotlib pytest ruff
    snntorch nirtorch loguru)
COMPILE_EXTRAS=".[torch,dev]"
RUNTIME_TOP=("lava-nc==0.10.0" "PyNN==0.13.0" "sPyNNaker==1!7.4.1" "brian2==2.9.0" "numpy<2"
    "networkx==2.8.7" h5py)
RUNTIME_EXTRAS="."

# Brian2 2.9.0 (the newest that supports Python 3.10) ships no cp310 wheel, so pip builds it from
# the sdist: Cython + a C compiler, in an isolated build env that pip fills from the package index.
# Its build requirements are unpinned upstream (numpy>=2.0.0rc1, Cython, setuptools, ...); these
# pins, applied to the build env only, keep that build reproducible. They cannot go into
# runtime.txt: the build needs numpy 2 while the runtime env needs numpy < 2.
BRIAN2_BUILD_PINS=(Cython==3.3.1 numpy==2.2.6 packaging==26.3 setuptools==84.2.1
    setuptools_scm==10.3.4 tomli==2.5.0 typing-extensions==4.16.0 vcs-versioning==2.6.0
    wheel==0.48.0)

export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

TMP_DIRS=()
cleanup() { if ((${#TMP_DIRS[@]})); then rm -rf "${TMP_DIRS[@]}"; fi; }
trap cleanup EXIT
# new_tmp VAR: make a temporary directory (removed on exit) and store its path in VAR.
new_tmp() {
    local d
    d="$(mktemp -d "${TMPDIR:-/tmp}/snncc-setup.XXXXXX")"
    TMP_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# --- interpreters ---------------------------------------------------------------------------

# Print "X.Y <absolute executable>" for an interpreter, or fail. pyenv shims exist for versions
# that are installed but not selected and exit 127, so every candidate is actually run.
py_info() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2], sys.executable)' 2>/dev/null
}

find_runtime_python() {
    local info prefix
    if [[ -n "${SNNCC_RUNTIME_PYTHON:-}" ]]; then
        info="$(py_info "$SNNCC_RUNTIME_PYTHON")" ||
            die "SNNCC_RUNTIME_PYTHON=$SNNCC_RUNTIME_PYTHON does not run"
        [[ "${info%% *}" == 3.10 ]] ||
            die "SNNCC_RUNTIME_PYTHON=$SNNCC_RUNTIME_PYTHON is Python ${info%% *}; lava-nc 0.10.0 needs Python 3.10"
        # The venv is made from this interpreter; keep the path the user gave (it may be a venv).
        printf '%s\n' "$SNNCC_RUNTIME_PYTHON"
        return
    fi
    if info="$(py_info python3.10)" && [[ "${info%% *}" == 3.10 ]]; then
        printf '%s\n' "${info#* }"
        return
    fi
    if command -v pyenv >/dev/null 2>&1 && prefix="$(pyenv prefix 3.10 2>/dev/null)" &&
        info="$(py_info "$prefix/bin/python3.10")" && [[ "${info%% *}" == 3.10 ]]; then
        printf '%s\n' "${info#* }"
        return
    fi
    cat >&2 <<'EOF'
setup: error: Python 3.10 not found (needed for the runtime environment: lava-nc 0.10.0 only
runs on Python 3.10). Looked at $SNNCC_RUNTIME_PYTHON, python3.10 on PATH and `pyenv prefix 3.10`.
Install Python 3.10 with its headers, for example:
    pyenv install 3.10            (then rerun make setup)
    apt-get install python3.10 python3.10-venv python3.10-dev
or point SNNCC_RUNTIME_PYTHON at a Python 3.10 interpreter:
    SNNCC_RUNTIME_PYTHON=/path/to/python3.10 make setup
EOF
    exit 1
}

find_compile_python() {
    local info cand
    if [[ -n "${SNNCC_PYTHON:-}" ]]; then
        info="$(py_info "$SNNCC_PYTHON")" || die "SNNCC_PYTHON=$SNNCC_PYTHON does not run"
        py_at_least_311 "${info%% *}" ||
            die "SNNCC_PYTHON=$SNNCC_PYTHON is Python ${info%% *}; the compile environment needs Python >= 3.11"
        printf '%s\n' "$SNNCC_PYTHON"
        return
    fi
    for cand in python3.11 python3; do
        if info="$(py_info "$cand")" && py_at_least_311 "${info%% *}"; then
            printf '%s\n' "${info#* }"
            return
        fi
    done
    cat >&2 <<'EOF'
setup: error: Python >= 3.11 not found (needed for the compile environment). Looked at
$SNNCC_PYTHON, python3.11 and python3. Install Python 3.11 (e.g. `pyenv install 3.11`) or run
    SNNCC_PYTHON=/path/to/python3.11 make setup
EOF
    exit 1
}

py_at_least_311() {
    local major="${1%%.*}" minor="${1#*.}"
    ((major > 3 || (major == 3 && minor >= 11)))
}

# --- helpers --------------------------------------------------------------------------------

sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi
}

# Hash of what a venv is built from: its pins, this script and the interpreter (path and full
# version). A change here rebuilds the venv from scratch.
env_hash() {
    local pins="$1" py="$2"
    {
        cat "$pins" scripts/setup.sh
        if [[ "$pins" == "$COMPILE_PINS" ]]; then cat "$COMPILE_NODEPS"; fi
        printf '%s\n' "$py"
        "$py" -c 'import sys; print(sys.version)'
    } | sha256 | cut -d' ' -f1
}

# Hash of pyproject.toml. A change here only reinstalls snncc into the existing venv (seconds):
# the package list and extras change often, and the pins already fix every dependency.
project_hash() {
    sha256 <pyproject.toml | cut -d' ' -f1
}

# Run pip quietly into a log (this machine's pip config can print hundreds of warnings); show
# the log's tail if it fails.
pip_logged() {
    local log="$1"
    shift
    if ! "$@" >>"$log" 2>&1; then
        printf 'setup: pip failed; last lines of %s:\n' "$log" >&2
        grep -v "^WARNING: Location '" "$log" | tail -n 40 >&2
        exit 1
    fi
}

# Build (or take from pip's cache) a Brian2 wheel for the runtime interpreter into WHEELHOUSE,
# with the isolated build env pinned by BRIAN2_BUILD_PINS.
build_brian2() {
    local venv="$1" spec="$2" log="$3" wheelhouse="$4" bdir bpins
    new_tmp bdir
    bpins="$bdir/build-constraints.txt"
    printf '%s\n' "${BRIAN2_BUILD_PINS[@]}" >"$bpins"
    # PIP_CONSTRAINT (unlike -c) reaches the pip that fills the isolated build env.
    pip_logged "$log" env PIP_CONSTRAINT="$bpins" \
        "$venv/bin/python" -m pip wheel --no-deps --wheel-dir "$wheelhouse" "$spec"
}

check_cc() {
    command -v "${CC:-cc}" >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 ||
        die "no C compiler found: Brian2 2.9.0 is built from source for Python 3.10 (install gcc, e.g. apt-get install build-essential)"
}

# --- environments ---------------------------------------------------------------------------

# install_pins NAME VENV PINS LOG [WHEELHOUSE]: pip install the pins and snncc (editable).
install_pins() {
    local name="$1" venv="$2" pins="$3" log="$4" wheelhouse="${5:-}"
    if [[ "$name" == runtime ]]; then
        say "installing $pins + snncc (editable, no torch) (log: $log)"
        pip_logged "$log" "$venv/bin/python" -m pip install ${wheelhouse:+--find-links "$wheelhouse"} \
            -r "$pins" -e "$RUNTIME_EXTRAS"
    else
        say "installing $pins + snncc[torch,dev] (editable) + $COMPILE_NODEPS (log: $log)"
        pip_logged "$log" "$venv/bin/python" -m pip install -r "$pins" -e "$COMPILE_EXTRAS"
        pip_logged "$log" "$venv/bin/python" -m pip install --no-deps -r "$COMPILE_NODEPS"
    fi
}

# make_env NAME VENV PY PINS STAMP
# The stamp holds two lines: "env <env_hash>" and "project <project_hash>".
make_env() {
    local name="$1" venv="$2" py="$3" pins="$4" stamp="$5" env_line project_line log spec
    local wheelhouse=""
    [[ -f "$pins" ]] || die "$pins is missing (run scripts/setup.sh --lock to create it)"
    env_line="env $(env_hash "$pins" "$py")"
    project_line="project $(project_hash)"
    log="$venv/setup.log"
    if [[ -f "$stamp" ]] && [[ "$(sed -n 1p "$stamp")" == "$env_line" ]] &&
        "$venv/bin/python" -c '' >/dev/null 2>&1; then
        if [[ "$(sed -n 2p "$stamp")" == "$project_line" ]]; then
            say "$name environment $venv is up to date"
            return
        fi
        say "pyproject.toml changed: reinstalling snncc into $venv"
        install_pins "$name" "$venv" "$pins" "$log"
        printf '%s\n%s\n' "$env_line" "$project_line" >"$stamp"
        say "$name environment ready"
        return
    fi
    say "creating $name environment $venv with $py ($("$py" --version 2>&1))"
    rm -rf "$venv" "$stamp"
    "$py" -m venv "$venv"
    : >"$log"
    if [[ "$name" == runtime ]]; then
        spec="$(grep -i -E '^brian2==' "$pins" || true)"
        if [[ -n "$spec" ]]; then
            check_cc
            say "building $spec for Python 3.10 from its sdist (log: $log)"
            new_tmp wheelhouse
            build_brian2 "$venv" "$spec" "$log" "$wheelhouse"
        fi
    fi
    install_pins "$name" "$venv" "$pins" "$log" "$wheelhouse"
    printf '%s\n%s\n' "$env_line" "$project_line" >"$stamp"
    say "$name environment ready"
}

# lock_env NAME PY OUT EXTRAS TOP...
lock_env() {
    local name="$1" py="$2" out="$3" extras="$4" tmp venv log wheelhouse spec
    shift 4
    new_tmp tmp
    venv="$tmp/venv"
    log="$tmp/pip.log"
    say "resolving $name requirements with $py: $*"
    "$py" -m venv "$venv"
    wheelhouse="$tmp/wheels"
    mkdir "$wheelhouse"
    for spec in "$@"; do
        if printf '%s\n' "$spec" | grep -q -i '^brian2=='; then
            check_cc
            build_brian2 "$venv" "$spec" "$log" "$wheelhouse"
        fi
    done
    pip_logged "$log" "$venv/bin/python" -m pip install --find-links "$wheelhouse" "$@" \
        -e "$extras"
    {
        printf '# snncc %s environment (Python %s): the full pinned closure.\n' "$name" \
            "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        # shellcheck disable=SC2016  # the backquotes are Markdown, not a command substitution
        printf '# Generated by `scripts/setup.sh --lock`: pip freeze after a clean install of\n'
        printf '#   %s\n' "$*" "snncc${extras#.} (editable, left out below)"
        printf '# Do not edit by hand; change the top-level list in scripts/setup.sh instead.\n'
        # Local version labels (torch 2.13.0+cpu from a CPU wheel dir) are dropped: ==2.13.0
        # matches any local label, so other machines take torch from their usual index.
        "$venv/bin/python" -m pip freeze --exclude-editable |
            sed -E 's/^([A-Za-z0-9_.-]+==[^+ ]+)\+[A-Za-z0-9.]+$/\1/'
    } >"$out.tmp"
    mv "$out.tmp" "$out"
    say "wrote $out ($(grep -c '==' "$out") pins)"
}

main() {
    local rt_py cp_py mode="${1:-}"
    case "$mode" in
    "" | --lock) ;;
    -h | --help)
        sed -n '2,26p' "${BASH_SOURCE[0]}"
        return
        ;;
    *) die "unknown argument $mode (try --help)" ;;
    esac

    # One setup at a time per checkout (two `make` runs racing would corrupt a venv).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$ROOT/.setup-stamp.lock"
        flock 9
    fi

    rt_py="$(find_runtime_python)"
    cp_py="$(find_compile_python)"

    if [[ "$mode" == --lock ]]; then
        lock_env compile "$cp_py" "$COMPILE_PINS" "$COMPILE_EXTRAS" "${COMPILE_TOP[@]}"
        lock_env runtime "$rt_py" "$RUNTIME_PINS" "$RUNTIME_EXTRAS" "${RUNTIME_TOP[@]}"
        return
    fi

    make_env compile "$COMPILE_VENV" "$cp_py" "$COMPILE_PINS" .setup-stamp-compile
    make_env runtime "$RUNTIME_VENV" "$rt_py" "$RUNTIME_PINS" .setup-stamp-runtime

    if [[ -n "${SNNCC_RUNTIME_PYTHON:-}" ]] &&
        ! "$SNNCC_RUNTIME_PYTHON" -c 'import lava, pyNN' >/dev/null 2>&1; then
        say "note: SNNCC_RUNTIME_PYTHON is set, and snncc runs runtime jobs with that interpreter," \
            "which lacks lava-nc/PyNN; unset it to use $RUNTIME_VENV"
    fi
}

main "$@"
