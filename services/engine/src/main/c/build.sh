#!/bin/sh
# Compiles the MKL vendor override into OUT_DIR/libhfprune_mkl_override.so (called by the engine's Maven build and by
# the Docker image's build stage). Never fails the build: without a C compiler it says so and leaves no library, and
# the launcher then runs without the override.
out="${1:?usage: build.sh OUT_DIR}"
src="$(dirname "$0")/mkl_vendor_override.c"
lib="$out/libhfprune_mkl_override.so"
cc="${CC:-cc}"
mkdir -p "$out"
if ! command -v "$cc" > /dev/null 2>&1; then
  echo "mkl-override: no C compiler ($cc); building without the MKL vendor override" >&2
  rm -f "$lib"
  exit 0
fi
if [ "$lib" -nt "$src" ]; then
  exit 0 # up to date
fi
if ! "$cc" -O2 -shared -fPIC -o "$lib" "$src"; then
  echo "mkl-override: $cc failed; building without the MKL vendor override" >&2
  rm -f "$lib"
fi
exit 0
