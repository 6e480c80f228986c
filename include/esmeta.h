/* esmeta: distributed evolution strategies for meta-learning. The public API. */
#ifndef ESMETA_H
#define ESMETA_H

#include "esmeta/core.h"
#include "esmeta/data.h"
#include "esmeta/dist.h"
#include "esmeta/es.h"
#include "esmeta/model.h"
#include "esmeta/optim.h"
#include "esmeta/protonet.h"
#include "esmeta/train.h"

#endif
