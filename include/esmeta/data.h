/* esmeta data: Omniglot (zips or folders) -> in-memory dataset -> splits -> seeded episodes. */
#ifndef ESMETA_DATA_H
#define ESMETA_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "esmeta/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reports progress of long loads: done of total units of `what`. */
typedef void (*esm_progress_fn)(void *user, const char *what, size_t done, size_t total);

/* Every character of the data set with all its drawings, preprocessed: pixels are uint8
 * with ink = 255 and background = 0 (the files have ink = 0), one byte per pixel. Classes
 * (character x rotation) are formed by splits, not stored. */
typedef struct {
    int height, width, channels;     /* of one preprocessed image */
    int n_chars;
    char **names;                    /* [n_chars] "Alphabet/characterNN" */
    uint8_t *background;             /* [n_chars] 1: images_background, 0: images_evaluation */
    int *n_images;                   /* [n_chars] drawings of each character */
    size_t *first;                   /* [n_chars] index of its first image in pixels */
    size_t n_total;                  /* images in all */
    uint8_t *pixels;                 /* [n_total][channels][height][width] */
    int n_splits;                    /* split files carried along (Vinyals) */
    char **split_names;              /* [n_splits] e.g. "trainval" */
    char **split_texts;              /* [n_splits] file contents */
    /* Per-channel mean and standard deviation of pixel/255 over the whole set (users' image
     * sets; stored in the cache). normalize = 1: episodes see (pixel/255 - mean) / std. */
    int normalize;
    float mean[4], std[4];
    /* How pixels were stored: 1 as 255 - value (Omniglot, or prepared with --invert), 0 as decoded,
     * -1 not recorded (caches before version 3). Stored in the cache so that images embedded later
     * are preprocessed as training saw them. */
    int inverted;
    /* A dataset read from a cache maps the file instead of copying it: pixels point into the
     * mapping (private, copy-on-write), so a set larger than memory is paged in as episodes
     * touch it. Owned by the dataset; NULL when pixels were allocated. */
    void *mapping;
    size_t mapping_len;
} esm_dataset;

typedef struct {
    int src_size;   /* expected width and height of every source image (105 for Omniglot) */
    int out_size;   /* preprocessed width and height (28) */
    int threads;    /* decode threads; 0 = OpenMP default */
    esm_progress_fn progress;
    void *progress_user;
} esm_load_opts;

esm_load_opts esm_load_opts_default(void);

/* Loads from a prepared cache file, or from a folder holding images_background and
 * images_evaluation (each as a .zip or as an extracted folder) and optionally
 * the Vinyals split files (splits/vinyals/NAME.txt). */
esm_status esm_dataset_load(const char *path, const esm_load_opts *opts, esm_dataset **out, esm_err *err);
void esm_dataset_free(esm_dataset *ds);

/* Writes ds as one binary cache file (magic, version, dimensions, names, pixels, CRC-32);
 * atomically: on failure no file is left at path and an older one stays intact. */
esm_status esm_cache_write(const esm_dataset *ds, const char *path, esm_err *err);
/* Maps the file (see esm_dataset.mapping) after checking its header, sizes and CRC. */
esm_status esm_cache_read(const char *path, esm_dataset **out, esm_err *err);
/* 1 if path starts with the cache magic. */
int esm_cache_is_cache(const char *path);

/* Decodes a PNG (any bit depth or colour type; flattened to grey) and preprocesses it as the
 * training data is: area-averaged to out_size x out_size, inverted so that ink = 255.
 * expect_size > 0 rejects images of another size. origin names the file in errors. */
esm_status esm_png_preprocess(const unsigned char *png, size_t len, int expect_size, int out_size, uint8_t *out,
                              const char *origin, esm_err *err);

/* The same for a file on disk. */
esm_status esm_png_preprocess_file(const char *path, int expect_size, int out_size, uint8_t *out, esm_err *err);

/* The shape images are preprocessed to. */
typedef struct {
    int channels;       /* 1 grey, 3 RGB */
    int height, width;
    int invert;         /* 1: 255 - value (Omniglot: ink = 255 on a background of 0) */
} esm_image_shape;

/* Decodes a PNG (8 bits or fewer per sample) or JPEG (grey or colour, not CMYK) and resizes it
 * axis by axis into out[channels][height][width]: area averaging on an axis that shrinks,
 * bilinear interpolation (pixel centres aligned, edges clamped) on one that grows. */
esm_status esm_image_preprocess(const unsigned char *bytes, size_t len, const esm_image_shape *shape, uint8_t *out,
                                const char *origin, esm_err *err);
/* The same for a file on disk (errors name path). */
esm_status esm_image_preprocess_file(const char *path, const esm_image_shape *shape, uint8_t *out, esm_err *err);

typedef struct {
    esm_image_shape shape;
    int threads;        /* decode threads; 0 = OpenMP default */
    int normalize;      /* 1: episodes see each channel standardised by the set's mean and std */
    size_t batch_bytes; /* esm_images_prepare: pixels decoded per batch (0: 16 MiB; at least one image) */
    esm_progress_fn progress;
    void *progress_user;
} esm_images_opts;

/* A user's own class-folder tree: every folder under dir that holds image files (.png, .jpg,
 * .jpeg, any case) is one class, named by its path below dir ("birds/sparrow"); classes and
 * their images are in name order. A folder with neither images nor subfolders is an empty
 * class and an error, as are images directly in dir. */
esm_status esm_dataset_from_images(const char *dir, const esm_images_opts *opts, esm_dataset **out, esm_err *err);

/* mini-ImageNet's convention: each CSV file (rows "filename,label", an optional header
 * "filename,label") is one split, named by the file ("train.csv" -> train), of the classes
 * its labels name; the files are found in images_dir. A label in two files, a file listed
 * twice in a class, or a missing file is an error naming it. */
esm_status esm_dataset_from_csv(const char *images_dir, const char *const *csvs, int n_csv, const esm_images_opts *o,
                                esm_dataset **out, esm_err *err);

/* esmeta prepare --images: the set above (a class-folder tree, or with n_csv > 0 CSV splits of
 * images_dir) straight into a cache file at cache_path, with ratio (NULL: none) adding splits as
 * esm_dataset_split_by_ratio does with seed. Images are decoded a batch at a time (in parallel)
 * and written out, so memory holds the file list and one batch of pixels (o->batch_bytes), never
 * the set: a set larger than memory can be prepared. The file is written atomically: an interrupted
 * run leaves no cache at cache_path (and any older one intact). On success *info, if info is
 * not NULL, describes the set (names, counts, splits, statistics) without pixels (pixels is
 * NULL; esm_cache_read the file to use them); free it with esm_dataset_free. */
esm_status esm_images_prepare(const char *images_dir, const char *const *csvs, int n_csv, const esm_images_opts *o,
                              const double *ratio, uint64_t seed, const char *cache_path, esm_dataset **info,
                              esm_err *err);

/* Adds splits "train", "val" and "test" to ds: its classes shuffled with seed and cut by the
 * fractions ratio[0..2] (non-negative, adding up to 1; each split gets at least one class).
 * A pure function of seed and the class names; the lists are in ds->split_texts, to be saved. */
esm_status esm_dataset_split_by_ratio(esm_dataset *ds, const double ratio[3], uint64_t seed, esm_err *err);

/* A class is a character seen at one rotation (quarter turns counter-clockwise). */
typedef struct {
    int chr;
    int rot;      /* 0..3: 0, 90, 180, 270 degrees */
    int n_images; /* drawings of the character */
} esm_class;

typedef struct {
    int n_classes;
    esm_class *classes;
    int min_images; /* fewest drawings of any class: bounds shot + query */
} esm_split;

/* name: a split carried by ds (Omniglot: train, val, trainval, test, Vinyals'), background,
 * evaluation (Lake: every character of that half at 4 rotations), or a path to a file of
 * lines "CLASS/rotDDD" or "CLASS" (rotation 0), e.g. "Alphabet/characterNN/rot090".
 * Rotations other than 0 need square images. */
esm_status esm_split_get(const esm_dataset *ds, const char *name, esm_split *out, esm_err *err);
esm_status esm_split_parse(const esm_dataset *ds, const char *text, const char *origin, esm_split *out,
                           esm_err *err);
void esm_split_free(esm_split *sp);
/* How many classes (character and rotation) of b are also classes of a; -1 if out of memory.
 * Vinyals' val lies inside trainval, so accuracy on val after training on trainval is not
 * held out: callers check this before calling an evaluation "validation". */
int esm_split_shared(const esm_dataset *ds, const esm_split *a, const esm_split *b);

/* Writes image `img` of character chr rotated by rot quarter turns as floats in [0,1]
 * (ink = 1), or standardised per channel when ds->normalize, into out[channels*height*width]. */
void esm_image_to_float(const esm_dataset *ds, int chr, int img, int rot, float *out);

/* Pixels preprocessed as ds's images are (esm_image_preprocess with ds's shape: planar
 * channels x height x width) to the floats an episode would hold for them. */
void esm_pixels_to_float(const esm_dataset *ds, const uint8_t *px, float *out);

typedef struct {
    int way, shot, query;
} esm_episode_shape;

/* One N-way K-shot Q-query episode. Support images are class-major (class c's shots at
 * rows c*shot .. c*shot+shot-1), queries likewise; labels are 0..way-1. */
typedef struct {
    esm_episode_shape shape;
    int image_size;     /* channels*height*width */
    int *classes;       /* [way] indices into the split */
    int *support_img;   /* [way*shot] drawing index within its class */
    int *query_img;     /* [way*query] */
    int *query_label;   /* [way*query] */
    float *support;     /* (way*shot, C, H, W) */
    float *query;       /* (way*query, C, H, W) */
    int *scratch;       /* [shot+query] */
} esm_episode;

/* Checks that the shape is positive and can be drawn from the split. */
esm_status esm_episode_check(const esm_split *sp, esm_episode_shape shape, esm_err *err);
esm_status esm_episode_init(esm_episode *ep, const esm_dataset *ds, esm_episode_shape shape, esm_err *err);
void esm_episode_free(esm_episode *ep);
/* Episode `index` of `seed`: a pure function of (seed, index, split, shape), so any thread or
 * process can build any episode. Shape must have passed esm_episode_check. */
void esm_episode_sample(esm_episode *ep, const esm_dataset *ds, const esm_split *sp, uint64_t seed,
                        uint64_t index);
/* Only the indices (classes, drawings), without filling pixels. */
void esm_episode_sample_indices(esm_episode *ep, const esm_split *sp, uint64_t seed, uint64_t index);

#ifdef __cplusplus
}
#endif
#endif
