/*
 * libengine_bf16: bf16 GEMM kernels for the CPU backend (src/Engine.Cpu/Bf16). .NET 10 has no
 * intrinsics for AVX512-BF16 (vdpbf16ps) or AMX, so these few kernels are C; the managed side loads
 * the library at run time and keeps its float32 path as the fallback.
 *
 * Products: C[m, n] = sum_k A[m, k] B[k, n] with bf16 inputs and float32 accumulation.
 *  - A is bf16 row-major with an even row length (pairs of k adjacent), lda in bf16 elements.
 *  - B is packed in panels of EB_NR columns; a panel holds, for each pair kp of k, EB_NR 32-bit
 *    words (B[2kp, n] in the low half, B[2kp+1, n] in the high half): the operand vdpbf16ps reads.
 * Every kernel entry is compiled for AVX512F + AVX512-BF16 and must only be called after
 * eb_features() reported both (the managed loader checks).
 */
#include <stdint.h>
#include <string.h>
#include <cpuid.h>
#include <immintrin.h>
#include <unistd.h>
#include <sys/syscall.h>

#define EB_EXPORT __attribute__((visibility("default")))
#define EB_KERNEL __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,f16c,fma")))

enum { EB_NR = 32, EB_MR = 12, EB_KC = 256 };

enum
{
    EB_AVX512F = 1, EB_AVX512_BF16 = 2, EB_AMX_TILE = 4, EB_AMX_BF16 = 8,
    EB_OS_ZMM = 16, EB_OS_AMX = 32,
};

/* Version of this interface; the managed loader refuses another. */
EB_EXPORT int eb_version(void) { return 1; }

/* Panel width in columns, for the managed packers' sizes. */
EB_EXPORT int eb_panel_cols(void) { return EB_NR; }

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* CPU features (CPUID) and what the OS enables (XCR0): bits EB_* above. */
EB_EXPORT int eb_features(void)
{
    unsigned a, b, c, d;
    int f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 27))   /* OSXSAVE */
    {
        uint64_t xcr0 = xgetbv0();
        if ((xcr0 & 0xE6) == 0xE6) f |= EB_OS_ZMM;                 /* SSE, AVX, opmask, ZMM */
        if ((xcr0 & (3u << 17)) == (3u << 17)) f |= EB_OS_AMX;     /* XTILECFG, XTILEDATA */
    }
    if (__get_cpuid_max(0, 0) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if (b & (1u << 16)) f |= EB_AVX512F;
    if (d & (1u << 24)) f |= EB_AMX_TILE;
    if (d & (1u << 22)) f |= EB_AMX_BF16;
    __cpuid_count(7, 1, a, b, c, d);
    if (a & (1u << 5)) f |= EB_AVX512_BF16;
    return f;
}

/* Linux asks a process to request the AMX tile state before first use: 1 granted, 0 refused. */
EB_EXPORT int eb_request_amx(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

/* float32 -> bf16 bits, round to nearest even (finite inputs; NaN stays NaN). */
static inline uint16_t bf16_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Rounds 16 floats and packs them with 16 others as pairs: low half from lo, high half from hi. */
EB_KERNEL static inline __m512i pair16(__m512 lo, __m512 hi)
{
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
    __m512i ul = _mm512_castps_si512(lo), uh = _mm512_castps_si512(hi);
    ul = _mm512_add_epi32(ul, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(ul, 16), one)));
    uh = _mm512_add_epi32(uh, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(uh, 16), one)));
    return _mm512_or_si512(_mm512_srli_epi32(ul, 16), _mm512_and_si512(uh, _mm512_set1_epi32((int)0xFFFF0000u)));
}

/* Element i of a row of src in dtype 0 = float32, 1 = float16, 2 = bf16 bits, as float32. */
EB_KERNEL static inline float load_any(const void *src, int dtype, long i)
{
    if (dtype == 0) return ((const float *)src)[i];
    if (dtype == 1) return _cvtsh_ss(((const uint16_t *)src)[i]);
    uint32_t u = (uint32_t)((const uint16_t *)src)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/*
 * Rows of src (dtype as load_any, cols values each, row stride lds elements) as bf16 rows of dst
 * (row stride ldd, even, >= cols; the columns past cols are zeroed). Activations (float32) pass
 * through here per call; weights once.
 */
EB_EXPORT EB_KERNEL void eb_rows_to_bf16(const void *src, int dtype, int rows, int cols, long lds, uint16_t *dst, long ldd)
{
    for (int r = 0; r < rows; r++)
    {
        uint16_t *d = dst + (long)r * ldd;
        int c = 0;
        if (dtype == 0)
        {
            const float *s = (const float *)src + (long)r * lds;
            for (; c + 32 <= cols; c += 32)
            {
                __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + c + 16), _mm512_loadu_ps(s + c));
                _mm512_storeu_si512((void *)(d + c), (__m512i)v);
            }
            for (; c < cols; c++) d[c] = bf16_of(s[c]);
        }
        else if (dtype == 2)
        {
            memcpy(d, (const uint16_t *)src + (long)r * lds, (size_t)cols * 2);
            c = cols;
        }
        else
        {
            const char *row = (const char *)src + (long)r * lds * 2;
            for (; c < cols; c++) d[c] = bf16_of(load_any(row, 1, c));
        }
        for (c = cols; c < ldd; c++) d[c] = 0;
    }
}

/*
 * Packs B[k, n] = W[n, k] (W: n rows of k values in dtype, row stride ldw; a Linear layer's weight)
 * into ceil(n / EB_NR) panels of kp = ceil(k / 2) pairs each; columns past n and k past k are zero.
 */
EB_EXPORT EB_KERNEL void eb_pack_b_from_rows(const void *w, int dtype, int n, int k, long ldw, uint32_t *dst)
{
    long kp = (k + 1) / 2;
    int panels = (n + EB_NR - 1) / EB_NR;
    memset(dst, 0, (size_t)panels * kp * EB_NR * 4);
    size_t esize = dtype == 0 ? 4 : 2;
    for (int j = 0; j < n; j++)
    {
        const char *row = (const char *)w + (long)j * ldw * esize;
        uint32_t *p = dst + (long)(j / EB_NR) * kp * EB_NR + (j % EB_NR);
        for (long q = 0; q < kp; q++)
        {
            uint32_t lo = bf16_of(load_any(row, dtype, 2 * q));
            uint32_t hi = 2 * q + 1 < k ? bf16_of(load_any(row, dtype, 2 * q + 1)) : 0;
            p[q * EB_NR] = lo | (hi << 16);
        }
    }
}

/* Values of depth index dd of the implicit im2col matrix at output positions j0 .. j0 + count. */
static void column_row(const float *x, const int *g, int dd, int j0, int count, float *t)
{
    int cin = g[0], h = g[1], w = g[2], kh = g[3], kw = g[4], stride = g[5], pad = g[6], wo = g[7];
    if (dd >= cin * kh * kw) { memset(t, 0, EB_NR * 4); return; }
    int ci = dd / (kh * kw), r = dd - ci * kh * kw, ky = r / kw, kx = r - ky * kw;
    const float *plane = x + (long)ci * h * w;
    int c = 0, oy = j0 / wo, ox = j0 - oy * wo;
    while (c < count)
    {
        int run = wo - ox < count - c ? wo - ox : count - c;
        int iy = oy * stride - pad + ky;
        if (iy < 0 || iy >= h) memset(t + c, 0, (size_t)run * 4);
        else
        {
            const float *row = plane + (long)iy * w;
            int ix = ox * stride - pad + kx;
            if (stride == 1)
            {
                /* Inside the image for positions [lo, hi) of the run: one copy, zeros at the edges. */
                int lo = -ix < 0 ? 0 : -ix > run ? run : -ix;
                int hi = w - ix < lo ? lo : w - ix > run ? run : w - ix;
                if (lo > 0) memset(t + c, 0, (size_t)lo * 4);
                if (hi > lo) memcpy(t + c + lo, row + ix + lo, (size_t)(hi - lo) * 4);
                if (run > hi) memset(t + c + hi, 0, (size_t)(run - hi) * 4);
            }
            else
                for (int q = 0; q < run; q++, ix += stride) t[c + q] = ix >= 0 && ix < w ? row[ix] : 0.0f;
        }
        c += run;
        ox = 0;
        oy++;
    }
    if (count < EB_NR) memset(t + count, 0, (size_t)(EB_NR - count) * 4);
}

/*
 * One B panel of a convolution's implicit column matrix, straight from the float32 image x
 * [cin, h, w]: output positions j0 .. j0 + count (count <= EB_NR), depth (ci, ky, kx) in pairs up to
 * kp pairs. g = {cin, h, w, kh, kw, stride, padding, wo}.
 */
EB_EXPORT EB_KERNEL void eb_pack_columns(const float *x, const int *g, int j0, int count, int kp, uint32_t *dst)
{
    float t0[EB_NR], t1[EB_NR];
    for (int q = 0; q < kp; q++)
    {
        column_row(x, g, 2 * q, j0, count, t0);
        column_row(x, g, 2 * q + 1, j0, count, t1);
        _mm512_storeu_si512((void *)(dst + (long)q * EB_NR), pair16(_mm512_loadu_ps(t0), _mm512_loadu_ps(t1)));
        _mm512_storeu_si512((void *)(dst + (long)q * EB_NR + 16), pair16(_mm512_loadu_ps(t0 + 16), _mm512_loadu_ps(t1 + 16)));
    }
}

/*
 * MR x EB_NR tile over kc pairs: c = (first ? bias : c) + a b. Masked to nv valid columns.
 * Always inlined with a constant MR so the accumulators stay in registers.
 */
EB_KERNEL static inline __attribute__((always_inline)) void tile(const int MR, int kc, const uint16_t *a, long lda,
    const uint32_t *b, float *c, long ldc, int nv, int first, const float *rbias, const float *cbias)
{
    __m512 acc[EB_MR][2];
    __mmask16 m0 = nv >= 16 ? 0xFFFF : (__mmask16)((1u << nv) - 1);
    __mmask16 m1 = nv >= 32 ? 0xFFFF : nv <= 16 ? 0 : (__mmask16)((1u << (nv - 16)) - 1);
    for (int r = 0; r < MR; r++)
    {
        if (first)
        {
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            if (cbias) { v0 = _mm512_maskz_loadu_ps(m0, cbias); v1 = _mm512_maskz_loadu_ps(m1, cbias + 16); }
            if (rbias) { __m512 rb = _mm512_set1_ps(rbias[r]); v0 = _mm512_add_ps(v0, rb); v1 = _mm512_add_ps(v1, rb); }
            acc[r][0] = v0; acc[r][1] = v1;
        }
        else
        {
            acc[r][0] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            acc[r][1] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
        }
    }
    for (int q = 0; q < kc; q++)
    {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(b + (long)q * EB_NR));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(b + (long)q * EB_NR + 16));
        for (int r = 0; r < MR; r++)
        {
            int32_t pair;
            memcpy(&pair, a + r * lda + 2 * q, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    for (int r = 0; r < MR; r++)
    {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[r][1]);
    }
}

EB_KERNEL static void tile_any(int mr, int kc, const uint16_t *a, long lda, const uint32_t *b, float *c, long ldc,
    int nv, int first, const float *rbias, const float *cbias)
{
    switch (mr)
    {
#define EB_CASE(R) case R: tile(R, kc, a, lda, b, c, ldc, nv, first, rbias, cbias); break;
        EB_CASE(1) EB_CASE(2) EB_CASE(3) EB_CASE(4) EB_CASE(5) EB_CASE(6)
        EB_CASE(7) EB_CASE(8) EB_CASE(9) EB_CASE(10) EB_CASE(11) EB_CASE(12)
#undef EB_CASE
    }
}

/*
 * C[m, n] (row stride ldc) = A B + row_bias[i] + col_bias[j] (either may be NULL). A: m bf16 rows of
 * kp pairs (stride lda elements); B: panels of kp pairs, panel_stride 32-bit words apart, the first
 * at column 0 of this product. Blocked over kp in EB_KC pairs so a B sub-panel stays in L1 while
 * every row block of A passes over it.
 */
EB_EXPORT EB_KERNEL void eb_gemm(int m, int n, int kp, const uint16_t *a, long lda, const uint32_t *b, long panel_stride,
    float *c, long ldc, const float *row_bias, const float *col_bias)
{
    int panels = (n + EB_NR - 1) / EB_NR;
    for (int k0 = 0; k0 < kp || k0 == 0; k0 += EB_KC)
    {
        int kc = kp - k0 < EB_KC ? kp - k0 : EB_KC;
        int first = k0 == 0;
        for (int jp = 0; jp < panels; jp++)
        {
            int nv = n - jp * EB_NR < EB_NR ? n - jp * EB_NR : EB_NR;
            const uint32_t *bp = b + (long)jp * panel_stride + (long)k0 * EB_NR;
            const float *cb = col_bias ? col_bias + jp * EB_NR : 0;
            for (int i = 0; i < m; i += EB_MR)
            {
                int mr = m - i < EB_MR ? m - i : EB_MR;
                tile_any(mr, kc, a + (long)i * lda + 2L * k0, lda, bp, c + (long)i * ldc + jp * EB_NR, ldc, nv, first,
                    row_bias ? row_bias + i : 0, cb);
            }
        }
        if (kp == 0) break;
    }
}
