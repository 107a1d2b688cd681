#include "tessera/train/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "tessera/core/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp copies tensor bytes as they are: it assumes a little-endian host"
#endif

namespace tessera::train {
namespace {

// The reference implementation refuses larger headers too (a real one is kilobytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kLengthBytes = 8;
// Deepest JSON a valid header holds: top object > tensor object > shape array. Longest array: a
// shape (no tensor has more dimensions).
constexpr int kMaxDepth = 3;
constexpr int64_t kMaxArrayElements = 64;

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
const DtypeName kDtypes[] = {{torch::kFloat64, "F64"}, {torch::kFloat32, "F32"},
                             {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
                             {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                             {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
                             {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"}};

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error("safetensors file " + source + " is invalid: " + what);
}

torch::ScalarType dtype_named(const std::string& name, const std::string& source,
                              const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  fail(source, "tensor '" + tensor + "' has unknown dtype '" + name + "'");
}

// Rejects nesting deeper than a header needs and over-long arrays before nlohmann builds anything,
// so that a hostile header cannot make the parser allocate far more than its own size.
void check_json_shape(std::string_view text, const std::string& source) {
  std::vector<int64_t> elements;  // per open bracket: commas seen (arrays only; -1 for objects)
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      elements.push_back(c == '[' ? 0 : -1);
      if (static_cast<int>(elements.size()) > kMaxDepth)
        fail(source, "the header nests deeper than tensor entries do");
    } else if (c == '}' || c == ']') {
      if (!elements.empty()) elements.pop_back();
    } else if (c == ',' && !elements.empty() && elements.back() >= 0) {
      if (++elements.back() >= kMaxArrayElements)
        fail(source, "the header holds an array of more than " + std::to_string(kMaxArrayElements) +
                         " entries");
    }
  }
}

// Parses the header, refusing duplicate keys in any object (nlohmann would keep the last one).
nlohmann::json parse_header(std::string_view text, const std::string& source) {
  check_json_shape(text, source);
  std::vector<std::set<std::string>> keys;  // of each open object
  std::string duplicate;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && !keys.empty() && parsed.is_string() &&
        !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    fail(source, std::string("the header is not JSON (") + e.what() + ")");
  }
  if (!duplicate.empty()) fail(source, "the header names '" + duplicate + "' twice");
  if (!header.is_object()) fail(source, "the header is not a JSON object");
  return header;
}

uint64_t unsigned_field(const nlohmann::json& value, const std::string& source,
                        const std::string& what) {
  if (!value.is_number_unsigned()) fail(source, what + " is not a non-negative integer");
  return value.get<uint64_t>();
}

std::vector<int64_t> read_shape(const nlohmann::json& entry, const std::string& source,
                                const std::string& name, uint64_t* numel) {
  const auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array())
    fail(source, "tensor '" + name + "' has no \"shape\" array");
  std::vector<int64_t> sizes;
  // Bounded by the data region in read_entry; here only protected from overflow, zeros included
  // (a [0, 2^62] shape must not overflow the strides libtorch computes).
  uint64_t product = 1;
  uint64_t nonzero_product = 1;
  for (const auto& dim : *shape) {
    const uint64_t size = unsigned_field(dim, source, "a dimension of tensor '" + name + "'");
    constexpr uint64_t kLimit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (size != 0) {
      if (size > kLimit / nonzero_product)
        fail(source, "tensor '" + name + "' has a shape whose size overflows");
      nonzero_product *= size;
    }
    product = size == 0 ? 0 : product * size;
    sizes.push_back(static_cast<int64_t>(size));
  }
  *numel = product;
  return sizes;
}

std::pair<torch::Tensor, std::pair<uint64_t, uint64_t>> read_entry(const nlohmann::json& entry,
                                                                   const std::string& name,
                                                                   std::string_view data,
                                                                   const std::string& source) {
  if (!entry.is_object()) fail(source, "the entry of tensor '" + name + "' is not an object");
  const auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string())
    fail(source, "tensor '" + name + "' has no \"dtype\" string");
  const torch::ScalarType type = dtype_named(dtype->get<std::string>(), source, name);
  uint64_t numel = 0;
  const std::vector<int64_t> shape = read_shape(entry, source, name, &numel);
  const auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2)
    fail(source, "tensor '" + name + "' has no \"data_offsets\": [begin, end]");
  const uint64_t begin = unsigned_field((*offsets)[0], source, "the begin of '" + name + "'");
  const uint64_t end = unsigned_field((*offsets)[1], source, "the end of '" + name + "'");
  if (begin > end || end > data.size())
    fail(source, "tensor '" + name + "' has data_offsets [" + std::to_string(begin) + ", " +
                     std::to_string(end) + "] outside the " + std::to_string(data.size()) +
                     " data bytes");
  const uint64_t element = c10::elementSize(type);
  // numel <= data.size() / element before multiplying: no overflow.
  if (numel > (end - begin) / element || numel * element != end - begin)
    fail(source, "tensor '" + name + "' holds " + std::to_string(end - begin) +
                     " bytes, but its shape and dtype need a different number");
  torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  if (end > begin) std::memcpy(tensor.data_ptr(), data.data() + begin, end - begin);
  return {tensor, {begin, end}};
}

std::map<std::string, std::string> read_metadata(const nlohmann::json& value,
                                                 const std::string& source) {
  if (!value.is_object()) fail(source, "\"__metadata__\" is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) fail(source, "\"__metadata__\" entry '" + key + "' is not a string");
    metadata[key] = text.get<std::string>();
  }
  return metadata;
}

// The reference implementation's rule: the tensors tile the data region, no gap, no overlap.
void check_tiling(std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> spans,
                  uint64_t data_bytes, const std::string& source) {
  std::sort(spans.begin(), spans.end());
  uint64_t expected = 0;
  for (const auto& [span, name] : spans) {
    if (span.first != expected)
      fail(source,
           "tensor '" + name + "' starts at data byte " + std::to_string(span.first) +
               (span.first < expected ? ", inside the previous tensor" : ", leaving a gap") +
               " (expected " + std::to_string(expected) + ")");
    expected = span.second;
  }
  if (expected != data_bytes)
    fail(source, "the tensors cover " + std::to_string(expected) + " of the " +
                     std::to_string(data_bytes) + " data bytes");
}

}  // namespace

std::string safetensors_dtype(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  throw Error(std::string("safetensors cannot hold tensors of type ") + c10::toString(type));
}

std::string write_safetensors(const SafetensorsFile& file) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::set<std::string> names;
  for (const auto& [name, tensor] : file.tensors) {
    if (name.empty() || name == "__metadata__")
      throw Error("safetensors: a tensor may not be named '" + name + "'");
    if (!names.insert(name).second) throw Error("safetensors: two tensors named '" + name + "'");
    tensors.emplace_back(name, tensor.detach().to(torch::kCPU).contiguous());
  }
  // As the reference implementation orders them: larger elements first (so that every tensor's
  // data stays aligned to its element size), then by name.
  std::stable_sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) {
    const size_t sa = a.second.element_size(), sb = b.second.element_size();
    return sa != sb ? sa > sb : a.first < b.first;
  });
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t bytes = tensor.nbytes();
    header[name] = {{"dtype", safetensors_dtype(tensor.scalar_type())},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string out(kLengthBytes, '\0');
  uint64_t length = text.size();
  std::memcpy(out.data(), &length, kLengthBytes);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& [name, tensor] : tensors)
    out.append(static_cast<const char*>(tensor.data_ptr()), tensor.nbytes());
  return out;
}

SafetensorsFile read_safetensors(std::string_view bytes, const std::string& source) {
  if (bytes.size() < kLengthBytes)
    fail(source, "it has " + std::to_string(bytes.size()) + " bytes, fewer than the header length");
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), kLengthBytes);
  if (length > bytes.size() - kLengthBytes)
    fail(source, "its header length " + std::to_string(length) + " exceeds the " +
                     std::to_string(bytes.size() - kLengthBytes) + " bytes that follow");
  if (length > kMaxHeaderBytes)
    fail(source, "its header length " + std::to_string(length) + " exceeds 100 MB");
  const nlohmann::json header = parse_header(bytes.substr(kLengthBytes, length), source);
  const std::string_view data = bytes.substr(kLengthBytes + length);

  SafetensorsFile file;
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      file.metadata = read_metadata(entry, source);
      continue;
    }
    auto [tensor, span] = read_entry(entry, name, data, source);
    file.tensors.emplace_back(name, std::move(tensor));
    spans.push_back({span, name});
  }
  check_tiling(std::move(spans), data.size(), source);
  return file;  // nlohmann's objects iterate by key: sorted by name
}

}  // namespace tessera::train
