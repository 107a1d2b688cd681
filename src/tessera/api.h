// tessera's public header for api/: one call per training method (train_conventional, train_pnn,
// train_sdp). Includes every header of src/tessera/api/ (installed under include/tessera/api/).
#pragma once

#include "tessera/api/methods.h"
