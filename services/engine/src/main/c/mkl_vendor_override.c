/*
 * Preloaded (LD_PRELOAD) into the JVM on non-Intel x86 CPUs so that the oneMKL inside libtorch_cpu.so picks its code
 * path by the CPU's features instead of by its vendor string. Without it, oneMKL 2024.0 (libtorch 2.7.1) reports
 * "Intel(R) Architecture processors", its generic path, on AMD CPUs: on an AVX-512 AMD CPU its float32 matrix
 * product ran at about half speed (issue 12), on an AVX2 one (Zen 3) about 20% slower than with this override.
 *
 * Both functions are exported by libtorch_cpu.so and called through its PLT, so a preloaded definition wins.
 * mkl_serv_intel_cpu_true is the widely known override; on libtorch 2.7.1's MKL it alone does not change what
 * MKL_VERBOSE reports, because mkl_serv_intel_cpu inlines its own vendor check (measured on an AMD EPYC, family 25):
 * overriding both makes MKL report the path of the CPU's widest vector extension.
 *
 * The launcher (./hfprune) and the Docker image decide where to preload it; see infra/mkl-override.sh.
 */
int mkl_serv_intel_cpu_true(void) { return 1; }

int mkl_serv_intel_cpu(void) { return 1; }
