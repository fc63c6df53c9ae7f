#!/usr/bin/env bash
# Compiles every Native/cuda/*.cu to PTX for compute_80 (the driver JIT-compiles it for Ampere, Hopper and newer)
# and writes Native/cuda/ptx/<name>.ptx (or into --out DIR), without line info: nvcc names internal symbols of
# the line tables after the absolute source path, which would make the PTX depend on where the checkout is (add
# -lineinfo locally to profile kernels at source level). Each PTX starts with the line
#   // dslm-source-sha256: <hex>
# the SHA-256 of <name>.cu's bytes followed by common.cuh's bytes, which tests/CudaPtxTests.cs recomputes to catch
# a kernel edited without regenerating its PTX.
#
#   scripts/build-ptx.sh [--nvcc PATH] [--out DIR]
# nvcc: --nvcc, else $CUDACXX, else nvcc on PATH, else the toolkit scripts/provision-nvcc.sh provisions.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="$root/Native/cuda"
out="$source_dir/ptx"
nvcc="${CUDACXX:-}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --nvcc) nvcc="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "build-ptx: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$nvcc" ]]; then
    nvcc="$(command -v nvcc || "$root/scripts/provision-nvcc.sh")"
fi
host_compiler=()
# Debian's nvcc 11.8 accepts clang-14 as host compiler (its preprocessor only runs on the kernels).
if command -v clang-14 >/dev/null; then host_compiler=(-ccbin clang-14); fi

mkdir -p "$out"
cd "$source_dir"
for source in *.cu; do
    name="${source%.cu}"
    hash="$(cat "$source" common.cuh | sha256sum | cut -d' ' -f1)"
    temporary="$(mktemp)"
    "$nvcc" "${host_compiler[@]}" -ptx -arch=compute_80 -O3 -o "$temporary" "$source"
    {
        echo "// dslm-source-sha256: $hash"
        cat "$temporary"
    } > "$out/$name.ptx"
    rm -f "$temporary"
    echo "build-ptx: $source -> $out/$name.ptx" >&2
done
