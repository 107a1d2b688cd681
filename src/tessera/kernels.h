// tessera's public header for kernels/: which kernels compute the linear layers' matrix products
// (--matmul-kernel), and the products themselves. Includes every header of src/tessera/kernels/.
#pragma once

#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/kernels/onednn_matmul.h"
#include "tessera/kernels/onednn_product.h"
