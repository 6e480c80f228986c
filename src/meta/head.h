/* Pieces of the ProtoNet head shared by the whole-episode and the streamed loss (private to src/meta). */
#ifndef ESM_META_HEAD_H
#define ESM_META_HEAD_H

/* Query q's cross-entropy against the prototypes (way, dim): prob (way) gets softmax(-dist(q, .));
 * returns -log p(label) and sets *hit when the label is the first-largest logit. */
double esm_protonet_query_xent(const float *q, const float *proto, int way, int dim, int label, float *prob,
                               int *hit);

#endif
