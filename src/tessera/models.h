// tessera's public header for models/: model families (Architecture, register_architecture,
// hidden_neurons), StagedModel, unit groups and subnets. Includes every header of
// src/tessera/models/ (installed under include/tessera/models/).
#pragma once

#include "tessera/models/activation.h"
#include "tessera/models/architecture.h"
#include "tessera/models/attention.h"
#include "tessera/models/conv_architecture.h"
#include "tessera/models/conv_blocks.h"
#include "tessera/models/conv_layout.h"
#include "tessera/models/families.h"
#include "tessera/models/generation.h"
#include "tessera/models/llama.h"
#include "tessera/models/model_config.h"
#include "tessera/models/neuron_group.h"
#include "tessera/models/regularizers.h"
#include "tessera/models/rms_norm.h"
#include "tessera/models/rotary.h"
#include "tessera/models/shared_input_linear.h"
#include "tessera/models/staged_model.h"
#include "tessera/models/subnet.h"
#include "tessera/models/vit_layers.h"
