// tessera's public header for data/: data sets (load_dataset: Fashion-MNIST, MNIST, EMNIST, CIFAR,
// synthetic, text), batches, augmentation. Includes every header of src/tessera/data/ (installed
// under include/tessera/data/).
#pragma once

#include "tessera/data/batches.h"
#include "tessera/data/cifar.h"
#include "tessera/data/data_file.h"
#include "tessera/data/dataset.h"
#include "tessera/data/idx.h"
#include "tessera/data/large_tensor.h"
#include "tessera/data/load.h"
#include "tessera/data/synthetic.h"
#include "tessera/data/text_corpus.h"
