/* esmeta embed: embeddings of the user's own images, preprocessed exactly as training data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta embed --checkpoint FILE [--data PATH [--invert]] IMAGE ...\n"
           "  prints one line per image (PNG or JPEG): path<TAB>v1 v2 ... (the embedding; evaluation-mode batch norm).\n"
           "  Images of any size are resized to the model's input as in training (area averaging when\n"
           "  shrinking, bilinear when enlarging).\n"
           "  --data PATH  the prepared set the model was trained on (cache or Omniglot folder): images get\n"
           "               its channel normalisation. Needed for RGB models and any set prepared with --images.\n"
           "  --invert     with --data: the set was prepared with --invert (Omniglot's sets are). Caches of\n"
           "               format 3 and later record it, so it is only needed for older caches.\n"
           "  Without --data: Omniglot's preprocessing (grey, inverted: dark strokes become ink = 1).\n");
}

typedef struct {
    const esm_model *m;
    const esm_dataset *ds; /* normalisation, or NULL: pixel / 255 */
    esm_image_shape shape;
    esm_net_ws *ws;
    uint8_t *px;
    float *x, *emb;
} embedder;

static int embed_one(embedder *e, const char *path, esm_err *err)
{
    if (esm_image_preprocess_file(path, &e->shape, e->px, err) != ESM_OK)
        return 0;
    const esm_model *m = e->m;
    if (e->ds)
        esm_pixels_to_float(e->ds, e->px, e->x);
    else
        for (int i = 0; i < m->net.in_size; i++)
            e->x[i] = e->px[i] / 255.0f;
    if (esm_net_forward(&m->net, m->params, m->bn_running, e->ws, e->x, 1, ESM_BN_EVAL, e->emb, err) != ESM_OK)
        return 0;
    printf("%s\t", path);
    for (int i = 0; i < m->net.emb_dim; i++)
        printf("%s%.7g", i ? " " : "", e->emb[i]);
    printf("\n");
    return 1;
}

/* The preprocessing the model was trained with: the set's shape must be the model's input, and its
 * inversion is the set's own record; only caches older than format 3 need the user's --invert. */
static esm_status choose_preprocessing(const esm_model *m, const char *ckpt, const char *data, const esm_dataset *ds,
                                       int invert, embedder *e, esm_err *err)
{
    const esm_net_config *c = &m->net.cfg;
    if (ds && ds->inverted == 0 && invert)
        return esm_fail(err, ESM_EINVAL, "--invert: --data %s records that it was prepared without --invert; drop "
                        "--invert", data);
    e->shape = (esm_image_shape){.channels = c->in_channels, .height = c->in_height, .width = c->in_width,
                                 .invert = !ds ? 1 : ds->inverted >= 0 ? ds->inverted : invert};
    if (ds && (ds->channels != c->in_channels || ds->height != c->in_height || ds->width != c->in_width))
        return esm_fail(err, ESM_EINVAL, "--data %s holds %dx%dx%d images but %s takes %dx%dx%d: give the set the "
                        "model was trained on", data, ds->channels, ds->height, ds->width, ckpt, c->in_channels,
                        c->in_height, c->in_width);
    if (!ds && c->in_channels != 1)
        return esm_fail(err, ESM_EINVAL, "%s takes %d-channel %dx%d images: give --data PATH, the set it was "
                        "trained on, so that images are normalised as in training", ckpt, c->in_channels,
                        c->in_height, c->in_width);
    e->ds = ds;
    return ESM_OK;
}

int cmd_embed(int argc, char **argv)
{
    embed_args a;
    char msg[600];
    int rc = cli_args_status("embed", cli_args_embed(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *ckpt = a.ckpt, *data = a.data;
    int invert = a.invert;
    esm_err err = {0};
    esm_model m;
    if (esm_model_load(ckpt, &m, &err) != ESM_OK)
        return cli_error(&err);
    esm_dataset *ds = NULL;
    embedder e = {.m = &m};
    rc = 0;
    if ((data && !cli_load_dataset(data, &ds, &err)) ||
        choose_preprocessing(&m, ckpt, data, ds, invert, &e, &err) != ESM_OK)
        rc = cli_error(&err);
    e.px = malloc((size_t)m.net.in_size);
    e.x = malloc(sizeof(float) * (size_t)m.net.in_size);
    e.emb = malloc(sizeof(float) * (size_t)m.net.emb_dim);
    if (rc == 0 && (!e.px || !e.x || !e.emb || esm_net_ws_create(&m.net, 1, 0, &e.ws, &err) != ESM_OK)) {
        if (!err.msg[0])
            esm_fail(&err, ESM_ENOMEM, "out of memory");
        rc = cli_error(&err);
    }
    for (int i = a.first_image; i < argc && rc == 0; i++)
        if (!embed_one(&e, argv[i], &err))
            rc = cli_error(&err);
    esm_net_ws_free(e.ws);
    free(e.px), free(e.x), free(e.emb);
    esm_dataset_free(ds);
    esm_model_free(&m);
    return rc;
}
