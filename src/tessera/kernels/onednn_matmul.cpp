#include "tessera/kernels/onednn_matmul.h"

#include <stdexcept>

#ifdef TESSERA_WITH_ONEDNN
#include <map>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace tessera::kernels {

#ifdef TESSERA_WITH_ONEDNN
namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A primitive, and the descriptors its arguments are wrapped in, for one shape and layout.
struct MatmulPrimitive {
  dnnl::memory::desc a, b, bias, c;
  dnnl::matmul primitive;
};

dnnl::memory::desc plain(const dnnl::memory::dims& sizes, const dnnl::memory::dims& strides) {
  return dnnl::memory::desc(sizes, dnnl::memory::data_type::f32, strides);
}

dnnl::memory::dims sizes_of(const StridedView& v) {
  return {v.sizes, v.sizes + v.rank};
}
dnnl::memory::dims strides_of(const StridedView& v) {
  return {v.strides, v.strides + v.rank};
}

// Row-major strides of `sizes`.
dnnl::memory::dims dense_strides(const dnnl::memory::dims& sizes) {
  dnnl::memory::dims strides(sizes.size(), 1);
  for (size_t d = sizes.size() - 1; d > 0; --d) strides[d - 1] = strides[d] * sizes[d];
  return strides;
}

// Everything a primitive is specialised on: both operands' sizes and strides, and the bias.
using Key = std::vector<int64_t>;

Key key_of(const StridedView& a, const StridedView& b, bool bias) {
  Key key{a.rank, bias ? 1 : 0};
  for (const StridedView* v : {&a, &b}) {
    key.insert(key.end(), v->sizes, v->sizes + v->rank);
    key.insert(key.end(), v->strides, v->strides + v->rank);
  }
  return key;
}

const MatmulPrimitive& primitive_for(const StridedView& a, const StridedView& b, bool bias) {
  // One cache per thread: a primitive's library-owned scratchpad lets one thread run it at a
  // time. Building one costs tens of microseconds; a model has a handful of shapes.
  thread_local std::map<Key, MatmulPrimitive> cache;
  const Key key = key_of(a, b, bias);
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  MatmulPrimitive p;
  p.a = plain(sizes_of(a), strides_of(a));
  p.b = plain(sizes_of(b), strides_of(b));
  dnnl::memory::dims c_sizes = sizes_of(a);
  c_sizes.back() = b.sizes[b.rank - 1];
  p.c = plain(c_sizes, dense_strides(c_sizes));
  if (bias) {
    dnnl::memory::dims bias_sizes(a.rank, 1);
    bias_sizes.back() = c_sizes.back();
    p.bias = plain(bias_sizes, dense_strides(bias_sizes));
  }
  const dnnl::matmul::desc desc =
      bias ? dnnl::matmul::desc(p.a, p.b, p.bias, p.c) : dnnl::matmul::desc(p.a, p.b, p.c);
  p.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(desc, cpu_engine()));
  return cache.emplace(key, std::move(p)).first->second;
}

}  // namespace

bool onednn_available() {
  return true;
}

void onednn_matmul(const StridedView& a, const StridedView& b, const float* bias, float* c) {
  bool fits = a.rank == b.rank && a.rank >= 2 && a.rank <= StridedView::kMaxRank &&
              a.sizes[a.rank - 1] == b.sizes[b.rank - 2];
  for (int d = 0; fits && d < a.rank - 2; ++d) fits = a.sizes[d] == b.sizes[d];
  if (!fits) throw std::invalid_argument("onednn_matmul: the operands' shapes do not fit");
  const MatmulPrimitive& p = primitive_for(a, b, bias != nullptr);
  dnnl::engine& engine = cpu_engine();
  thread_local dnnl::stream stream(engine);
  // oneDNN takes non-const handles; it only reads the inputs.
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl::memory(p.a, engine, const_cast<float*>(a.data))},
      {DNNL_ARG_WEIGHTS, dnnl::memory(p.b, engine, const_cast<float*>(b.data))},
      {DNNL_ARG_DST, dnnl::memory(p.c, engine, c)}};
  if (bias != nullptr)
    args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, engine, const_cast<float*>(bias)));
  p.primitive.execute(stream, args);
  stream.wait();
}
#else
bool onednn_available() {
  return false;
}

void onednn_matmul(const StridedView&, const StridedView&, const float*, float*) {
  throw std::runtime_error("onednn_matmul: this build has no oneDNN (install libdnnl-dev)");
}
#endif

}  // namespace tessera::kernels
