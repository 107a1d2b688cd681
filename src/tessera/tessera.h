// Everything of tessera as a library: every module's public header.
#pragma once

#include "tessera/api.h"
#include "tessera/core.h"
#include "tessera/data.h"
#include "tessera/dist.h"
#include "tessera/kernels.h"
#include "tessera/metrics.h"
#include "tessera/models.h"
#include "tessera/pnn.h"
#include "tessera/report.h"
#include "tessera/sdp.h"
#include "tessera/train.h"
