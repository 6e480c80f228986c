/* One variant of the direct conv's micro-kernel (conv_direct.c includes this file once per
 * instruction set, with the CD_* macros naming its vector type and operations; the file undefines
 * them at its end).
 *
 * A tile is CD_MR output channels by up to CD_NR vectors of CD_V consecutive output pixels
 * (flat index p = y*w + x of one image), all accumulators in registers. Each of the 9*cin taps
 * loads the tile's pixel vectors once (contiguous runs of a tap plane, conv_direct.c) and reuses
 * them for the CD_MR channels, whose weights are broadcast: a GEMM micro-kernel that reads the
 * input where it lies instead of from an im2col copy. Every output is a chain of
 * CD_FMA(weight, input, acc) from acc = 0 over the taps in the order (ci, ky, kx), then + bias:
 * its bits depend on neither the tile nor where the pixel lies in it. */

/* acc (CD_MR, nr) for channels co0.. at the nr pixel vectors from s0; channels >= a->cout are not
 * stored (their weights are the zero padding of wt). The taps are a flat list (a->off), so the
 * loop keeps few pointers live and the tile's accumulators never leave the registers. */
static inline __attribute__((always_inline)) CD_ATTR void CD_NAME(tile)(const struct cd_image *a, int co0, int s0,
                                                                         const int nr)
{
    CD_VEC acc[CD_MR][CD_NR];
#pragma GCC unroll 16
    for (int m = 0; m < CD_MR; m++)
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            acc[m][j] = CD_ZERO();
    const float *wk = a->wt + (size_t)(co0 / CD_CPAD) * a->k * CD_CPAD + co0 % CD_CPAD, *in = a->planes + s0;
    for (int k = 0; k < a->k; k++, wk += CD_CPAD) {
        const float *src = in + a->off[k];
        CD_VEC x[CD_NR];
#pragma GCC unroll 4
        for (int j = 0; j < nr; j++)
            x[j] = CD_LOAD(src + j * CD_V);
#pragma GCC unroll 16
        for (int m = 0; m < CD_MR; m++) {
            CD_VEC b = CD_SET1(wk[m]);
#pragma GCC unroll 4
            for (int j = 0; j < nr; j++)
                acc[m][j] = CD_FMA(b, x[j], acc[m][j]);
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

/* The whole image: pixel vectors at 0, V, 2V, ... and, when V does not divide h*w, one last
 * vector ending at the last pixel (it overlaps the one before and recomputes equal values); an
 * image smaller than one vector is one vector whose lanes past h*w read the planes' slack and are
 * not stored. Groups of CD_NR vectors run over all channel tiles while their taps are in cache. */
static CD_ATTR void CD_NAME(image)(const struct cd_image *a)
{
    int nv = a->hw >= CD_V ? a->hw / CD_V : 1;
    for (int v0 = 0; v0 < nv; v0 += CD_NR) {
        int nr = nv - v0 < CD_NR ? nv - v0 : CD_NR;
        for (int co0 = 0; co0 < a->cout; co0 += CD_MR) {
            if (nr == CD_NR)
                CD_NAME(tile)(a, co0, v0 * CD_V, CD_NR);
            else if (nr == 1)
                CD_NAME(tile)(a, co0, v0 * CD_V, 1);
            else
                CD_NAME(tile)(a, co0, v0 * CD_V, 2);
        }
    }
    if (a->hw > CD_V && a->hw % CD_V != 0)
        for (int co0 = 0; co0 < a->cout; co0 += CD_MR)
            CD_NAME(tile)(a, co0, a->hw - CD_V, 1);
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
