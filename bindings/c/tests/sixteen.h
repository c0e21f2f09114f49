/* The 16-bit formats for the C tests and the fuzzer, written here apart from the library: F16 (IEEE binary16) and
 * BF16 (the top half of a float), each to and from float, rounding to nearest even; overflow gives Inf, NaN stays NaN. */
#ifndef BN_TESTS_SIXTEEN_H
#define BN_TESTS_SIXTEEN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exponent = (h >> 10) & 31, mantissa = h & 1023, bits;
    if (exponent == 31) bits = sign | 0x7F800000u | (mantissa << 13);
    else if (exponent) bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    else { float f = (float)mantissa * 0x1p-24f; memcpy(&bits, &f, 4); bits |= sign; }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t float_to_half(float f) { /* round to nearest even, overflow to Inf, NaN stays NaN */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7E00;
    if (a >= 65520.0f) return sign | 0x7C00;
    if (a < 0x1p-14f) return sign | (uint16_t)lrintf(a * 0x1p24f);
    int e;
    float m = frexpf(a, &e); /* a = m·2^e, m in [0.5, 1) */
    uint32_t q = (uint32_t)lrintf(ldexpf(m, 11)); /* 11 significant bits */
    if (q == 2048) { q = 1024; e++; }
    return sign | (uint16_t)(((uint32_t)(e + 14) << 10) + (q - 1024));
}

static inline float bf16_to_float(uint16_t b) { uint32_t bits = (uint32_t)b << 16; float f; memcpy(&f, &bits, 4); return f; }

static inline uint16_t float_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if (isnan(f)) return (uint16_t)((bits >> 16) | 0x40);
    return (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

/* The spacing of the format at v: 2^(e - 10) for F16, 2^(e - 7) for BF16; the subnormal step below the normal range. */
static inline double sixteen_ulp(int bf16, double v) {
    double a = fabs(v), smallest_normal = bf16 ? 0x1p-126 : 0x1p-14;
    if (a < smallest_normal) return bf16 ? 0x1p-133 : 0x1p-24;
    int e;
    frexp(a, &e); /* a = m·2^e with m in [0.5, 1) */
    return ldexp(1, e - 1 - (bf16 ? 7 : 10));
}

#endif
