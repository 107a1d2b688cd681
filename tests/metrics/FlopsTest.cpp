#include "tessera/metrics/flops.h"

#include <gtest/gtest.h>

namespace tessera::metrics {
namespace {

// Every expected value is worked out by hand from the layer's definition: a multiply-add is two
// FLOPs, a bias adds one FLOP per output value.

TEST(FlopsTest, Linear) {
  // 784 -> 1024, one row, bias: 2 * 784 * 1024 multiply-add FLOPs + 1024 bias additions.
  EXPECT_EQ(linear_flops(1, 784, 1024), 1'605'632 + 1'024);
  EXPECT_EQ(linear_flops(1, 784, 1024, /*bias=*/true), 1'606'656);
  // No bias: 2 * 784 * 1024 = 1,605,632.
  EXPECT_EQ(linear_flops(1, 784, 1024, /*bias=*/false), 1'605'632);
  // 32 rows of 1024 -> 10 with bias: 32 * (2 * 1024 * 10 + 10) = 32 * 20,490 = 655,680.
  EXPECT_EQ(linear_flops(32, 1024, 10), 655'680);
}

TEST(FlopsTest, Conv2d) {
  // 3 -> 64 channels, 3x3 kernel, 32x32 output, no bias:
  // outputs 64 * 32 * 32 = 65,536; each is 3 * 3 * 3 = 27 multiply-adds -> 2 * 65,536 * 27.
  EXPECT_EQ(conv2d_flops(3, 64, 3, 3, 32, 32), 3'538'944);
  // Same with bias: + 65,536.
  EXPECT_EQ(conv2d_flops(3, 64, 3, 3, 32, 32, /*groups=*/1, /*bias=*/true), 3'604'480);
  // Depthwise 32 -> 32, groups 32, 3x3, 16x16: outputs 32 * 256 = 8,192, each 1 * 9 multiply-adds
  // -> 2 * 8,192 * 9 = 147,456.
  EXPECT_EQ(conv2d_flops(32, 32, 3, 3, 16, 16, /*groups=*/32), 147'456);
  // 64 -> 128, groups 4, 1x1, 8x8, bias: outputs 128 * 64 = 8,192, each 16 multiply-adds
  // -> 2 * 8,192 * 16 + 8,192 = 262,144 + 8,192 = 270,336.
  EXPECT_EQ(conv2d_flops(64, 128, 1, 1, 8, 8, /*groups=*/4, /*bias=*/true), 270'336);
}

TEST(FlopsTest, Attention) {
  // 65 tokens, width 192, 3 heads:
  // Q K^T: 2 * 65 * 65 * 192 = 1,622,400; A V: the same; softmax: 5 * 3 * 65 * 65 = 63,375.
  EXPECT_EQ(attention_flops(65, 192, 3), 1'622'400 + 1'622'400 + 63'375);
  EXPECT_EQ(attention_flops(65, 192, 3), 3'308'175);
  // 4 tokens, width 8, 2 heads: 2 * 16 * 8 = 256 twice, 5 * 2 * 16 = 160 -> 672.
  EXPECT_EQ(attention_flops(4, 8, 2), 672);
}

TEST(FlopsTest, NormAndElementwise) {
  // BatchNorm over a 64x16x16 map: 16,384 values * 5 FLOPs.
  EXPECT_EQ(norm_flops(64 * 16 * 16), 81'920);
  EXPECT_EQ(elementwise_flops(1000), 1000);
}

TEST(FlopsTest, TrainingIsThreeForwards) {
  // Forward 1,606,656 + backward (input and weight gradients) 2 * 1,606,656 = 4,819,968.
  EXPECT_EQ(training_flops(linear_flops(1, 784, 1024)), 4'819'968);
  EXPECT_EQ(training_flops(0), 0);
}

}  // namespace
}  // namespace tessera::metrics
