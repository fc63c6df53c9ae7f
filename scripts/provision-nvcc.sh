#!/usr/bin/env bash
# Provisions nvcc 11.8 (Debian 12 non-free nvidia-cuda-toolkit) into a user cache folder without installing
# anything system-wide, and prints the path of an nvcc wrapper that uses it. Idempotent: a complete cache is
# reused as is. Needs apt-get, dpkg-deb and python3 (Debian 12); no root.
#
#   scripts/provision-nvcc.sh            # prints e.g. /root/.cache/dslm/cuda-11.8/bin/nvcc
#   DSLM_CUDA_TOOLKIT_CACHE=/some/dir scripts/provision-nvcc.sh
#
# What is fetched (measured on Debian 12, 2024 mirror):
#   nvidia-cuda-toolkit  84 MB  nvcc, cicc, ptxas, cudafe++, libdevice
#   libnvvm4              8 MB  (declared dependency; kept for nvcc's nvvm lookups)
#   nvidia-cuda-dev     774 MB  ONLY its usr/include is unpacked (the first 208 archive entries, streamed so the
#                               rest is never decompressed); the .deb is deleted afterwards.
# The cache holds ~215 MB. Host compiler: clang-14 (pass -ccbin clang-14 to nvcc).
set -euo pipefail

version=11.8
cache="${DSLM_CUDA_TOOLKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dslm/cuda-$version}"
wrapper="$cache/bin/nvcc"
if [[ -f "$cache/.complete" && -x "$wrapper" ]]; then
    echo "$wrapper"
    exit 0
fi

for tool in apt-get dpkg-deb python3; do
    command -v "$tool" >/dev/null || { echo "provision-nvcc: $tool not found" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc" "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
# A private apt configuration: the system's sources stay untouched; this one adds contrib and non-free, where
# Debian ships the CUDA toolkit.
cat > "$work/etc/cuda.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_options=(
    -o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work/etc"
    -o "Dir::State::lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1" -qq
)
echo "provision-nvcc: fetching package lists" >&2
apt-get "${apt_options[@]}" update >&2
echo "provision-nvcc: downloading nvidia-cuda-toolkit, libnvvm4, nvidia-cuda-dev (~870 MB)" >&2
(cd "$work/debs" && apt-get "${apt_options[@]}" download nvidia-cuda-toolkit libnvvm4 nvidia-cuda-dev >&2)

rm -rf "$cache"
mkdir -p "$cache"
dpkg-deb -x "$work/debs"/nvidia-cuda-toolkit_*.deb "$cache"
dpkg-deb -x "$work/debs"/libnvvm4_*.deb "$cache"
# Headers only: stream the data tarball and stop at the first entry past usr/include (static libraries follow).
dpkg-deb --fsys-tarfile "$work/debs"/nvidia-cuda-dev_*.deb 2>/dev/null | python3 -c '
import sys, tarfile
destination = sys.argv[1]
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as archive:
    for member in archive:
        name = member.name.lstrip("./")
        if name in ("", "usr"):
            continue
        if not name.startswith("usr/include"):
            break
        archive.extract(member, destination, filter="tar")
' "$cache" || true
[[ -f "$cache/usr/include/cuda_runtime.h" ]] || { echo "provision-nvcc: headers missing after unpacking" >&2; exit 1; }

# Debian's nvcc.profile is a link to /etc/nvcc.profile with absolute /usr paths; point it at the cache instead.
toolkit_bin="$cache/usr/lib/nvidia-cuda-toolkit/bin"
rm -f "$toolkit_bin/nvcc.profile"
cat > "$toolkit_bin/nvcc.profile" <<'PROFILE'
NVVMIR_LIBRARY_DIR = $(_HERE_)/../libdevice
PATH += $(_HERE_):$(_HERE_)/../../../bin:
INCLUDES += "-I$(_HERE_)/../../../include" $(_SPACE_)
PROFILE
mkdir -p "$cache/bin"
cat > "$wrapper" <<WRAPPER
#!/bin/sh
exec "$toolkit_bin/nvcc" "\$@"
WRAPPER
cat > "$cache/bin/ptxas" <<WRAPPER
#!/bin/sh
exec "$cache/usr/bin/ptxas" "\$@"
WRAPPER
chmod +x "$wrapper" "$cache/bin/ptxas"
touch "$cache/.complete"
echo "$wrapper"
