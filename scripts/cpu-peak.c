// Peak multiply-add rates of this CPU's AVX2 units, for the ceiling analysis in BENCHMARKS.md
// ("trm-edge host inference: what this CPU allows"). Twelve independent accumulator chains per
// loop (enough to cover the latency of every unit measured), register operands only.
//
//   gcc -O2 -mavx2 -mfma scripts/cpu-peak.c -o /tmp/cpu-peak && /tmp/cpu-peak
//   (/tmp/cpu-peak & /tmp/cpu-peak; wait)    # both cores at once
//
// Prints multiply-adds per second (one MAC = 2 FLOP/OP) for:
//   fma      vfmadd231ps: f32 x f32 + f32 (8 lanes), what trm-edge's tile kernels use;
//   madd16   vpmaddwd + vpaddd: i16 x i16 pairs into i32 (16 MACs per vpmaddwd);
//   maddubs  vpmaddubsw + vpmaddwd(1) + vpaddd: u8 x i8 into i16 pairs (saturating), then i32
//            (32 MACs per vpmaddubsw): the fastest int8 dot product AVX2 has.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const long n = 100000000;
    __m256 a[12];
    __m256 x = _mm256_set1_ps(1.0001f), w = _mm256_set1_ps(0.9999f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double t0 = now();
    for (long k = 0; k < n; k++) {
        __asm__ volatile("" : "+x"(x), "+x"(w));
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(x, w, a[i]);
    }
    double t = now() - t0;
    float fs = 0;
    for (int i = 0; i < 12; i++) fs += _mm256_cvtss_f32(a[i]);
    printf("fma     %6.1f G-MAC/s (%6.1f GFLOP/s)  [%g]\n", n * 12 * 8 / t / 1e9,
           n * 12 * 16 / t / 1e9, fs);

    __m256i b[12], wi[6];
    __m256i x0 = _mm256_set1_epi16(3), x1 = _mm256_set1_epi16(4), ones = _mm256_set1_epi16(1);
    for (int i = 0; i < 6; i++) wi[i] = _mm256_set1_epi16((short)i);
    for (int i = 0; i < 12; i++) b[i] = _mm256_set1_epi32(i);
    t0 = now();
    for (long k = 0; k < n; k++) {
        __asm__ volatile("" : "+x"(x0), "+x"(x1));
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            b[2 * i] = _mm256_add_epi32(b[2 * i], _mm256_madd_epi16(x0, wi[i]));
            b[2 * i + 1] = _mm256_add_epi32(b[2 * i + 1], _mm256_madd_epi16(x1, wi[i]));
        }
    }
    t = now() - t0;
    int is = 0;
    for (int i = 0; i < 12; i++) is += _mm256_extract_epi32(b[i], 0);
    printf("madd16  %6.1f G-MAC/s  [%d]\n", n * 12 * 16 / t / 1e9, is);

    t0 = now();
    for (long k = 0; k < n; k++) {
        __asm__ volatile("" : "+x"(x0), "+x"(x1));
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(x0, wi[i]), ones);
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(x1, wi[i]), ones);
            b[2 * i] = _mm256_add_epi32(b[2 * i], p0);
            b[2 * i + 1] = _mm256_add_epi32(b[2 * i + 1], p1);
        }
    }
    t = now() - t0;
    for (int i = 0; i < 12; i++) is += _mm256_extract_epi32(b[i], 0);
    printf("maddubs %6.1f G-MAC/s  [%d]\n", n * 12 * 32 / t / 1e9, is);
    return 0;
}
