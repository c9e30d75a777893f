#!/usr/bin/env bash
# Build librealsense and its Python bindings (pyrealsense2) from source on a 64-bit ARM board (Raspberry Pi OS,
# Ubuntu, JetPack), where PyPI has no pyrealsense2 wheel, and put pyrealsense2 into the Python you run kerasdance
# with (your virtual environment).
#
#   python3 -m venv ~/kd && . ~/kd/bin/activate && pip install ".[edge]"
#   tools/install_realsense.sh                 # newest librealsense release, into the active venv's Python
#   tools/install_realsense.sh --version vX.Y.Z --python ~/kd/bin/python --jobs 2 [--cuda]
#
# What it does: apt-get installs the build tools and libusb/libssl/libudev headers; clones the chosen librealsense
# tag; configures with the RSUSB user-space backend (FORCE_RSUSB_BACKEND: no kernel patches, the route
# librealsense recommends for Jetson and ARM boards) and BUILD_PYTHON_BINDINGS for that Python, without the
# examples, tools and graphical viewer; builds (long on a Raspberry Pi: not timed by the project; allow ~2 GB of
# memory per compile job and add swap on a 2-4 GB board); installs the library under --prefix (sudo), the udev
# rules (camera access without root) and the pyrealsense2 module into the Python's site-packages; then imports it
# and lists the cameras.
#
# Not run in the tests and not tried on a board by the project: the steps follow librealsense's CMake options
# (CMake/lrs_options.cmake) and its Jetson/Raspberry Pi notes. On x86_64 use the wheel instead:
# pip install ".[edge,realsense]".
set -euo pipefail

VERSION=latest
PYTHON_BIN=""
JOBS=""
CUDA=OFF
PREFIX=/usr/local
SRC="${HOME}/librealsense-src"
FORCE=0
REPO_URL=https://github.com/IntelRealSense/librealsense.git

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --version TAG   librealsense release tag (default: the newest vX.Y.Z tag of the repository)
  --python PATH   the Python to build the bindings for and install into (default: the active venv's python,
                  else python3)
  --jobs N        parallel compile jobs (default: min(cores, memory GB / 2), at least 1)
  --cuda          build with CUDA (Jetson; nvcc must be on PATH, e.g. /usr/local/cuda/bin)
  --prefix DIR    where the C++ library goes (default /usr/local)
  --src DIR       where the source is cloned and built (default ~/librealsense-src)
  --force         build even on x86_64 (where pip has wheels)
EOF
}

die() { echo "install_realsense: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --version) VERSION="${2:?--version needs a tag}"; shift 2 ;;
        --python) PYTHON_BIN="${2:?--python needs a path}"; shift 2 ;;
        --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
        --cuda) CUDA=ON; shift ;;
        --prefix) PREFIX="${2:?--prefix needs a folder}"; shift 2 ;;
        --src) SRC="${2:?--src needs a folder}"; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

ARCH="$(uname -m)"
if [ "$ARCH" = "x86_64" ] && [ "$FORCE" -eq 0 ]; then
    echo "x86_64: PyPI has pyrealsense2 wheels here: pip install \".[edge,realsense]\" (or --force to build anyway)"
    exit 0
fi
[ "$(uname -s)" = "Linux" ] || die "this script is for Linux boards (Raspberry Pi OS, Ubuntu, JetPack)"

if [ -z "$PYTHON_BIN" ]; then
    if [ -n "${VIRTUAL_ENV:-}" ]; then PYTHON_BIN="${VIRTUAL_ENV}/bin/python"; else PYTHON_BIN="$(command -v python3)"; fi
fi
[ -x "$PYTHON_BIN" ] || die "no Python at '$PYTHON_BIN' (give --python PATH)"
"$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON_BIN is older than Python 3.11, which kerasdance needs"
SITE="$("$PYTHON_BIN" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"

if [ -z "$JOBS" ]; then
    cores="$(nproc)"
    mem_gb="$(awk '/MemTotal/ {print int($2 / 1048576)}' /proc/meminfo)"
    JOBS=$(( mem_gb / 2 < cores ? mem_gb / 2 : cores ))
    [ "$JOBS" -ge 1 ] || JOBS=1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

echo "== build tools and headers (apt-get)"
$SUDO apt-get update
$SUDO apt-get install -y git cmake build-essential pkg-config libssl-dev libusb-1.0-0-dev libudev-dev python3-dev

if [ "$VERSION" = "latest" ]; then
    VERSION="$(git ls-remote --tags --refs "$REPO_URL" 'v2.*' | sed 's#.*refs/tags/##' \
               | grep -E '^v2\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1)"
    [ -n "$VERSION" ] || die "could not find the newest release tag (no network?); give --version vX.Y.Z"
fi
echo "== librealsense $VERSION for $PYTHON_BIN ($ARCH), $JOBS job(s), CUDA $CUDA, into $PREFIX"

if [ -d "$SRC/.git" ]; then
    git -C "$SRC" fetch --depth 1 origin tag "$VERSION"
    git -C "$SRC" checkout -q "$VERSION"
else
    git clone --depth 1 --branch "$VERSION" "$REPO_URL" "$SRC"
fi

cmake -S "$SRC" -B "$SRC/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DFORCE_RSUSB_BACKEND=ON \
    -DBUILD_PYTHON_BINDINGS=ON \
    -DPYTHON_EXECUTABLE="$PYTHON_BIN" \
    -DBUILD_EXAMPLES=OFF \
    -DBUILD_GRAPHICAL_EXAMPLES=OFF \
    -DBUILD_TOOLS=OFF \
    -DBUILD_UNIT_TESTS=OFF \
    -DCHECK_FOR_UPDATES=OFF \
    -DIMPORT_DEPTH_CAM_FW=OFF \
    -DBUILD_WITH_CUDA="$CUDA"
cmake --build "$SRC/build" -j "$JOBS"

echo "== install the library ($PREFIX) and the udev rules"
$SUDO cmake --install "$SRC/build"
$SUDO ldconfig
$SUDO cp "$SRC/config/99-realsense-libusb.rules" /etc/udev/rules.d/
$SUDO udevadm control --reload-rules
$SUDO udevadm trigger

echo "== pyrealsense2 into $SITE"
module="$(find "$SRC/build" -name 'pyrealsense2.cpython-*.so' -print -quit)"
[ -n "$module" ] || die "the build made no pyrealsense2.cpython-*.so under $SRC/build"
rm -rf "$SITE/pyrealsense2"
mkdir -p "$SITE/pyrealsense2"
cp -L "$module" "$SITE/pyrealsense2/"
printf '"""pyrealsense2 built from librealsense %s by kerasdance tools/install_realsense.sh."""\nfrom .pyrealsense2 import *  # noqa: F401,F403\n' \
    "$VERSION" > "$SITE/pyrealsense2/__init__.py"

echo "== check"
"$PYTHON_BIN" -c 'import pyrealsense2 as rs; n = len(rs.context().query_devices()); print(f"pyrealsense2 imports; {n} RealSense camera(s) connected")'
echo "done: kerasdance-edge track --model model.tflite --source realsense"
