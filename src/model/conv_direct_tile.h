/* One variant of the direct conv's micro-kernel (conv_direct.c includes this file once per
 * instruction set, with the CD_* macros naming its vector type and operations; the file undefines
 * them at its end).
 *
 * A tile is CD_MR output channels by up to CD_NR vectors of CD_V consecutive output pixels
 * (flat index p = y*w + x of one image), all accumulators in registers. Each of the 9*cin taps
 * loads the tile's pixel vectors once (contiguous runs of a padded plane, conv_direct.c) and reuses
 * them for the CD_MR channels, whose weights are broadcast: a GEMM micro-kernel that reads the
 * input where it lies instead of from an im2col copy. Every output is a chain of
 * CD_FMA(weight, input, acc) from acc = 0 over the taps in the order (ci, ky, kx), then + bias:
 * its bits depend on neither the tile nor where the pixel lies in it. */

/* acc (CD_MR, nr) for channels co0.. at the nr pixel vectors from s0; channels >= a->cout are not
 * stored (their weights are the zero padding of wt). The taps are a flat list of (ci, ky) rows
 * (a->off), kx = 0, 1, 2 being the three floats from there; the kx = 0 and 2 taps of a pixel in
 * the image's first or last column are masked to 0 (bits0, bits2: lane l of vector j is bit
 * j*CD_V + l), exactly the zero padding's value. */
static inline __attribute__((always_inline)) CD_ATTR void CD_NAME(tile)(const struct cd_image *a, int co0, int s0,
                                                                         const int nr, const uint16_t *bits0,
                                                                         const uint16_t *bits2)
{
    CD_VEC acc[CD_MR][CD_NR];
    CD_MASK m0[CD_NR], m2[CD_NR];
#pragma GCC unroll 4
    for (int j = 0; j < nr; j++) {
        m0[j] = CD_MASK_FROM_BITS(bits0[j]);
        m2[j] = CD_MASK_FROM_BITS(bits2[j]);
    }
#pragma GCC unroll 16
    for (int m = 0; m < CD_MR; m++)
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            acc[m][j] = CD_ZERO();
    const float *wk = a->wt + (size_t)(co0 / CD_CPAD) * a->k * CD_CPAD + co0 % CD_CPAD, *in = a->planes + s0;
    for (int r = 0; r < a->k / 3; r++) {
        const float *src = in + a->off[r];
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++, wk += CD_CPAD) {
            CD_VEC x[CD_NR];
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++)
                x[j] = kx == 1   ? CD_LOAD(src + 1 + j * CD_V)
                       : kx == 0 ? CD_LOAD_MASK(src + j * CD_V, m0[j])
                                 : CD_LOAD_MASK(src + 2 + j * CD_V, m2[j]);
#pragma GCC unroll 16
            for (int m = 0; m < CD_MR; m++) {
                CD_VEC b = CD_SET1(wk[m]);
#pragma GCC unroll 4
                for (int j = 0; j < nr; j++)
                    acc[m][j] = CD_FMA(b, x[j], acc[m][j]);
            }
        }
    }
#pragma GCC unroll 16
    for (int m = 0; m < CD_MR; m++) {
        int co = co0 + m;
        if (co >= a->cout)
            break;
        CD_VEC b = CD_SET1(a->bias ? a->bias[co] : 0.0f);
        float *o = a->out + (size_t)co * a->hw + s0;
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++) {
            CD_VEC v = a->bias ? CD_ADD(acc[m][j], b) : acc[m][j];
            if (a->hw >= CD_V)
                CD_STORE(o + j * CD_V, v);
            else
                CD_STORE_PART(o, v, a->hw);
        }
    }
}

/* nr vectors from s0 over all channel tiles while their taps are in cache; their edge masks are
 * worked out once. */
static inline __attribute__((always_inline)) CD_ATTR void CD_NAME(group)(const struct cd_image *a, int s0, int nr)
{
    uint16_t b0[CD_NR], b2[CD_NR];
    edge_bits(s0, nr * CD_V, a->w, CD_V, b0, b2);
    for (int co0 = 0; co0 < a->cout; co0 += CD_MR) {
        if (nr == CD_NR)
            CD_NAME(tile)(a, co0, s0, CD_NR, b0, b2);
        else if (nr == 1)
            CD_NAME(tile)(a, co0, s0, 1, b0, b2);
        else
            CD_NAME(tile)(a, co0, s0, 2, b0, b2);
    }
}

/* The whole image: pixel vectors at 0, V, 2V, ... in groups of CD_NR and, when V does not divide
 * h*w, one last vector ending at the last pixel (it overlaps the one before and recomputes equal
 * values); an image smaller than one vector is one vector whose lanes past h*w read the planes'
 * slack and are not stored. */
static CD_ATTR void CD_NAME(image)(const struct cd_image *a)
{
    int nv = a->hw >= CD_V ? a->hw / CD_V : 1;
    for (int v0 = 0; v0 < nv; v0 += CD_NR)
        CD_NAME(group)(a, v0 * CD_V, nv - v0 < CD_NR ? nv - v0 : CD_NR);
    if (a->hw > CD_V && a->hw % CD_V != 0)
        CD_NAME(group)(a, a->hw - CD_V, 1);
}

#undef CD_ATTR
#undef CD_NAME
#undef CD_VEC
#undef CD_V
#undef CD_MR
#undef CD_NR
#undef CD_ZERO
#undef CD_LOAD
#undef CD_SET1
#undef CD_FMA
#undef CD_ADD
#undef CD_STORE
#undef CD_STORE_PART
#undef CD_MASK
#undef CD_MASK_FROM_BITS
#undef CD_LOAD_MASK
