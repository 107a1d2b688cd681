// tessera's public header for kernels/: which kernels compute the matrix products (--matmul-kernel,
// --bf16-kernel), the products and convolutions themselves, and the fused batch norm + ReLU.
// Includes every header of src/tessera/kernels/.
#pragma once

#include "tessera/kernels/batch_norm_relu.h"
#include "tessera/kernels/bf16_kernel.h"
#include "tessera/kernels/bf16_products.h"
#include "tessera/kernels/conv2d.h"
#include "tessera/kernels/linear.h"
#include "tessera/kernels/matmul.h"
#include "tessera/kernels/matmul_backend.h"
#include "tessera/kernels/onednn_matmul.h"
#include "tessera/kernels/onednn_product.h"
