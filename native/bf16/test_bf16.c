/* test_bf16: eb_gemm on packed operands against a double-precision product of the same bf16-rounded
 * inputs (only the float32 accumulation order differs), and the column packer against im2col.
 * Exits 77 (skipped) on a CPU without AVX512-BF16. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int eb_features(void);
void eb_rows_to_bf16(const void *src, int dtype, int rows, int cols, long lds, uint16_t *dst, long ldd);
void eb_pack_b_from_rows(const void *w, int dtype, int n, int k, long ldw, uint32_t *dst);
void eb_pack_columns(const float *x, const int *g, int j0, int count, int kp, uint32_t *dst);
void eb_gemm(int m, int n, int kp, const uint16_t *a, long lda, const uint32_t *b, long panel_stride,
             float *c, long ldc, const float *row_bias, const float *col_bias);

static float widen(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static float rnd(float x) { uint16_t h; eb_rows_to_bf16(&x, 0, 1, 1, 1, &h, 1); return widen(h); }

static int check_linear(int m, int n, int k)
{
    int kp = (k + 1) / 2, panels = (n + 31) / 32;
    float *x = malloc(sizeof(float) * m * k), *w = malloc(sizeof(float) * n * k), *bias = malloc(sizeof(float) * n);
    float *c = malloc(sizeof(float) * m * n);
    uint16_t *a = malloc(2 * (size_t)m * 2 * kp);
    uint32_t *b = malloc(4 * (size_t)panels * kp * 32);
    srand(m * 131 + n * 7 + k);
    for (int i = 0; i < m * k; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (int i = 0; i < n * k; i++) w[i] = (float)rand() / RAND_MAX * 2 - 1;
    for (int i = 0; i < n; i++) bias[i] = (float)i / n;
    eb_rows_to_bf16(x, 0, m, k, k, a, 2 * kp);
    eb_pack_b_from_rows(w, 0, n, k, k, b);
    eb_gemm(m, n, kp, a, 2 * kp, b, (long)kp * 32, c, n, NULL, bias);
    double worst = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = bias[j], mag = fabs(bias[j]);
            for (int q = 0; q < k; q++) { double p = (double)rnd(x[i * k + q]) * rnd(w[j * k + q]); s += p; mag += fabs(p); }
            double e = fabs(c[i * n + j] - s) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    free(x); free(w); free(bias); free(c); free(a); free(b);
    printf("linear %dx%dx%d: worst error %.2e of the sum of |products|\n", m, n, k, worst);
    return worst < 1e-5;
}

static int check_columns(void)
{
    /* cin 3, 7x6 image, 3x3 kernel, stride 2, padding 1: wo 3, ho 4, depth 27 (odd). */
    int g[8] = {3, 7, 6, 3, 3, 2, 1, 3};
    float x[3 * 7 * 6];
    for (int i = 0; i < 3 * 7 * 6; i++) x[i] = (float)(i % 17) - 8;
    int kp = 14, spatial = 12;
    uint32_t panel[14 * 32];
    eb_pack_columns(x, g, 0, spatial, kp, panel);
    for (int d = 0; d < 2 * kp; d++)
        for (int j = 0; j < 32; j++)
        {
            float want = 0;
            if (d < 27 && j < spatial)
            {
                int ci = d / 9, ky = d % 9 / 3, kx = d % 3, oy = j / 3, ox = j % 3;
                int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                if (iy >= 0 && iy < 7 && ix >= 0 && ix < 6) want = x[ci * 42 + iy * 6 + ix];
            }
            uint32_t word = panel[(d / 2) * 32 + j];
            float got = widen((uint16_t)(d % 2 ? word >> 16 : word & 0xFFFF));
            if (got != want) { printf("columns: depth %d position %d: %g, want %g\n", d, j, got, want); return 0; }
        }
    printf("columns: im2col panel matches\n");
    return 1;
}

int main(void)
{
    int f = eb_features();
    if ((f & 3) != 3 || !(f & 16)) { printf("no AVX512F + AVX512-BF16 (features %#x): skipped\n", f); return 77; }
    int ok = check_linear(1, 1, 1) && check_linear(13, 33, 7) && check_linear(40, 70, 600) && check_linear(25, 64, 512) && check_columns();
    return ok ? 0 : 1;
}
