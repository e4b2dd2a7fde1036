#!/bin/sh
# Usage: malloc-tuning.sh COMMAND [ARG ...]
# Runs COMMAND with a malloc that keeps and reuses the memory libtorch frees: tcmalloc where it is installed (Debian's
# and Ubuntu's libtcmalloc-minimal4; the Docker image has it), else glibc's malloc with tunables to the same end. Used
# by the ./hfprune launcher and by the Docker image, in front of mkl-override.sh.
#
# Why: libtorch allocates every intermediate tensor with malloc and frees it when its NDManager closes. glibc serves
# a block above its mmap threshold (128 KiB, rising to at most 32 MiB) with a fresh mmap and unmaps it when freed, so
# the next batch's tensors land on new pages that the kernel zeroes on first touch: with `--memory store` on the
# synthetic model, perf showed 29% of the process's time in the kernel's clear_page. tcmalloc keeps freed spans for
# reuse; on a TinyLlama-shaped model it scored 1.5x as fast as glibc's defaults with less peak RSS (README,
# Performance). Without it, glibc keeps blocks up to 32 MiB in its heap (a fixed mmap threshold), serves every thread
# from one arena (a thread's own arena is mmap'd in 64 MiB pieces, unmapped when empty) and trims its heap only
# beyond 4 GiB of free top; mmap off altogether measured faster still but with 17% more peak RSS, against the memory
# target at T = 2048.
#
# HFPRUNE_MALLOC_TUNING=0 turns it off; =glibc skips tcmalloc. HFPRUNE_TCMALLOC names the library where it is not in
# a standard place. A GLIBC_TUNABLES of the user's own is left as it is. HFPRUNE_MALLOC_TUNING_STATE tells the JVM
# what was decided and why (hfprune --version prints it).
set -eu

GLIBC="glibc.malloc.mmap_threshold=33554432:glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=4294967296"

tcmalloc() {
  if [ -n "${HFPRUNE_TCMALLOC:-}" ]; then
    [ -f "$HFPRUNE_TCMALLOC" ] && echo "$HFPRUNE_TCMALLOC"
    return 0
  fi
  for dir in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib; do
    if [ -f "$dir/libtcmalloc_minimal.so.4" ]; then
      echo "$dir/libtcmalloc_minimal.so.4"
      return 0
    fi
  done
}

# prints the decision; its first word is tcmalloc, glibc or off
decide() {
  case "${HFPRUNE_MALLOC_TUNING:-auto}" in
    0 | off | false) echo "off: HFPRUNE_MALLOC_TUNING=${HFPRUNE_MALLOC_TUNING}"; return 0 ;;
    1 | on | true | auto | "") lib="$(tcmalloc)" ;;
    glibc) lib="" ;;
    *) echo "off: HFPRUNE_MALLOC_TUNING=${HFPRUNE_MALLOC_TUNING} is not 0, 1, glibc or auto"; return 0 ;;
  esac
  if [ -n "$lib" ]; then
    echo "tcmalloc: $lib"
  elif [ -n "${GLIBC_TUNABLES:-}" ]; then
    echo "off: no tcmalloc, and GLIBC_TUNABLES is set already (${GLIBC_TUNABLES}), left as it is"
  elif ! getconf GNU_LIBC_VERSION > /dev/null 2>&1; then
    echo "off: no tcmalloc, and not glibc"
  else
    if [ "${HFPRUNE_MALLOC_TUNING:-}" = glibc ]; then
      echo "glibc: HFPRUNE_MALLOC_TUNING=glibc, tunables set by the launcher"
    else
      echo "glibc: no tcmalloc${HFPRUNE_TCMALLOC:+ at $HFPRUNE_TCMALLOC}, tunables set by the launcher"
    fi
  fi
}

state="$(decide)"
case "$state" in
  tcmalloc:*) export LD_PRELOAD="${state#tcmalloc: }${LD_PRELOAD:+:$LD_PRELOAD}" ;;
  glibc:*) export GLIBC_TUNABLES="$GLIBC" ;;
esac
export HFPRUNE_MALLOC_TUNING_STATE="$state"
exec "$@"
