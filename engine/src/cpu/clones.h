#pragma once
// MOESCOPE_CLONES: a hot loop compiled for AVX-512, AVX2+FMA and baseline x86-64, one picked at
// load time (GCC's target_clones). Not under the sanitizers, whose runtimes do not take ifuncs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define MOESCOPE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MOESCOPE_CLONES
#endif
