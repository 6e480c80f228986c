/* esmeta embed: embeddings of the user's own images, preprocessed exactly as training data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: esmeta embed --checkpoint FILE IMAGE.png [IMAGE.png ...]\n"
           "  prints one line per image: path<TAB>v1 v2 ... (the embedding; evaluation-mode batch norm).\n"
           "  Images of any size and colour type are flattened to grey, area-averaged to the model's input\n"
           "  size and inverted (dark strokes on a light background become ink = 1), as in training.\n");
}

static int embed_one(const esm_model *m, esm_net_ws *ws, const char *path, uint8_t *px, float *x, float *emb,
                     esm_err *err)
{
    if (esm_png_preprocess_file(path, 0, m->net.cfg.in_height, px, err) != ESM_OK)
        return 0;
    for (int i = 0; i < m->net.in_size; i++)
        x[i] = px[i] / 255.0f;
    if (esm_net_forward(&m->net, m->params, m->bn_running, ws, x, 1, ESM_BN_EVAL, emb, err) != ESM_OK)
        return 0;
    printf("%s\t", path);
    for (int i = 0; i < m->net.emb_dim; i++)
        printf("%s%.7g", i ? " " : "", emb[i]);
    printf("\n");
    return 1;
}

int cmd_embed(int argc, char **argv)
{
    embed_args a;
    char msg[600];
    int rc = cli_args_status("embed", cli_args_embed(argc, argv, &a, msg, sizeof msg), msg, help);
    if (rc >= 0)
        return rc;
    const char *ckpt = a.ckpt;
    esm_err err = {0};
    esm_model m;
    if (esm_model_load(ckpt, &m, &err) != ESM_OK)
        return cli_error(&err);
    if (m.net.cfg.in_channels != 1 || m.net.cfg.in_height != m.net.cfg.in_width) {
        esm_fail(&err, ESM_EUNSUPPORTED, "%s: embed handles square one-channel models; this one takes %dx%dx%d",
                 ckpt, m.net.cfg.in_channels, m.net.cfg.in_height, m.net.cfg.in_width);
        esm_model_free(&m);
        return cli_error(&err);
    }
    esm_net_ws *ws = NULL;
    uint8_t *px = malloc((size_t)m.net.in_size);
    float *x = malloc(sizeof(float) * (size_t)m.net.in_size), *emb = malloc(sizeof(float) * (size_t)m.net.emb_dim);
    rc = 0;
    if (!px || !x || !emb || esm_net_ws_create(&m.net, 1, 0, &ws, &err) != ESM_OK) {
        if (!err.msg[0])
            esm_fail(&err, ESM_ENOMEM, "out of memory");
        rc = cli_error(&err);
    }
    for (int i = a.first_image; i < argc && rc == 0; i++)
        if (!embed_one(&m, ws, argv[i], px, x, emb, &err))
            rc = cli_error(&err);
    esm_net_ws_free(ws);
    free(px), free(x), free(emb);
    esm_model_free(&m);
    return rc;
}
