#!/bin/sh
# Usage: mkl-override.sh LIBRARY COMMAND [ARG ...]
# Runs COMMAND with the MKL vendor override LIBRARY preloaded (LD_PRELOAD) where it helps, else as it is; used by the
# ./hfprune launcher and by the Docker image. Where it helps: a non-Intel x86 CPU with AVX2 or AVX-512, and a libtorch
# that carries MKL. libtorch's oneMKL takes its generic path on such CPUs: on an AVX-512 AMD CPU its float32 matrix
# product ran at about half speed (issue 12), and on an AVX2-only AMD EPYC (Zen 3) the override made sgemm about 20%
# and scoring about 15% faster (README, Performance). On Intel CPUs MKL picks its best path itself; on older CPUs it
# has nothing wider to pick. HFPRUNE_MKL_OVERRIDE=0 turns it off, =1 preloads it on any CPU; unset or auto decides as
# above. HFPRUNE_MKL_OVERRIDE_STATE tells the JVM what was decided and why (hfprune --version prints it).
set -eu
lib="$1"
shift

decide() {
  case "${HFPRUNE_MKL_OVERRIDE:-auto}" in
    0 | off | false) echo "off: HFPRUNE_MKL_OVERRIDE=${HFPRUNE_MKL_OVERRIDE}"; return 1 ;;
    1 | on | true) forced=1 ;;
    auto | "") forced=0 ;;
    *) echo "off: HFPRUNE_MKL_OVERRIDE=${HFPRUNE_MKL_OVERRIDE} is not 0, 1 or auto"; return 1 ;;
  esac
  if [ ! -f "$lib" ]; then
    echo "off: $lib was not built, no C compiler at build time"
    return 1
  fi
  if [ "$forced" = 1 ]; then
    echo "on: HFPRUNE_MKL_OVERRIDE=${HFPRUNE_MKL_OVERRIDE}"
    return 0
  fi
  vendor="$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo 2> /dev/null | head -n 1)"
  if [ -z "$vendor" ]; then
    echo "off: no x86 vendor in /proc/cpuinfo"
    return 1
  fi
  if [ "$vendor" = GenuineIntel ]; then
    echo "off: GenuineIntel CPU, where MKL picks its best path itself"
    return 1
  fi
  flags="$(grep -m 1 '^flags' /proc/cpuinfo)"
  if echo "$flags" | grep -qw avx512f; then
    simd=AVX-512
  elif echo "$flags" | grep -qw avx2; then
    simd=AVX2
  else
    echo "off: $vendor CPU without AVX2; HFPRUNE_MKL_OVERRIDE=1 forces it"
    return 1
  fi
  # DJL's CPU natives (pytorch-native-cpu for linux-x86_64) link MKL into libtorch_cpu.so; a libtorch of one's own
  # (PYTORCH_LIBRARY_PATH) may not.
  if [ -n "${PYTORCH_LIBRARY_PATH:-}" ] && ! grep -qa mkl_serv_intel_cpu "$PYTORCH_LIBRARY_PATH/libtorch_cpu.so" 2> /dev/null; then
    echo "off: the libtorch in $PYTORCH_LIBRARY_PATH has no MKL"
    return 1
  fi
  echo "on: $vendor CPU with $simd"
  return 0
}

if state="$(decide)"; then
  export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
  # MKL's own paths (unlike the generic one) round differently with the memory alignment of the operands: the same
  # batch scored by two loads of a model differed by 2.5e-7 relative, and the pipeline's test of Gram sums equal to a
  # direct pass failed. Strict conditional numerical reproducibility makes them bitwise repeatable again.
  export MKL_CBWR="${MKL_CBWR:-AUTO,STRICT}"
fi
export HFPRUNE_MKL_OVERRIDE_STATE="$state"
exec "$@"
