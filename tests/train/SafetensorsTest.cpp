// The safetensors writer and reader: the exact layout of the specification, round trips of every
// dtype, and every malformed file the reader must refuse with a clear error (it reads untrusted
// files, and is fuzzed).
#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "tessera/core/error.h"
#include "tessera/train/safetensors.h"

namespace {

using tessera::train::read_safetensors;
using tessera::train::SafetensorsFile;
using tessera::train::write_safetensors;

uint64_t header_length(const std::string& bytes) {
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  return length;
}

nlohmann::json header_of(const std::string& bytes) {
  return nlohmann::json::parse(bytes.substr(8, header_length(bytes)));
}

// A file of a raw header text and data bytes, as a hostile writer could make it.
std::string raw_file(const std::string& header, const std::string& data, int64_t length = -1) {
  std::string bytes(8, '\0');
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + data;
}

// Expects read_safetensors to throw tessera::Error whose message contains `expected`.
void expect_refused(const std::string& bytes, const std::string& expected) {
  try {
    read_safetensors(bytes, "bad.safetensors");
    ADD_FAILURE() << "accepted a file that should fail with '" << expected << "'";
  } catch (const tessera::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
}

SafetensorsFile every_dtype() {
  torch::manual_seed(3);
  SafetensorsFile file;
  file.tensors = {{"a.f32", torch::randn({3, 4})},
                  {"b.f64", torch::randn({2}, torch::kFloat64)},
                  {"c.f16", torch::randn({5}).to(torch::kFloat16)},
                  {"d.bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
                  {"e.i64", torch::arange(-3, 4, torch::kInt64)},
                  {"f.i32", torch::arange(0, 6, torch::kInt32).reshape({2, 3})},
                  {"g.i16", torch::tensor({-7, 9}, torch::kInt16)},
                  {"h.i8", torch::tensor({-128, 127}, torch::kInt8)},
                  {"i.u8", torch::tensor({0, 255}, torch::kUInt8)},
                  {"j.bool", torch::tensor({true, false, true})},
                  {"k.scalar", torch::tensor(2.5)},
                  {"l.empty", torch::zeros({0, 3})},
                  // not contiguous: written as its values
                  {"m.transposed", torch::arange(6, torch::kFloat32).reshape({2, 3}).t()}};
  file.metadata = {{"model", R"({"arch":"mlp"})"}, {"note", "héllo \"quoted\""}};
  return file;
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndTheMetadata) {
  const SafetensorsFile original = every_dtype();
  const SafetensorsFile read = read_safetensors(write_safetensors(original), "memory");
  EXPECT_EQ(read.metadata, original.metadata);
  ASSERT_EQ(read.tensors.size(), original.tensors.size());
  for (size_t i = 0; i < read.tensors.size(); ++i) {  // both sorted by name
    const auto& [name, tensor] = read.tensors[i];
    EXPECT_EQ(name, original.tensors[i].first);
    EXPECT_EQ(tensor.scalar_type(), original.tensors[i].second.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(tensor, original.tensors[i].second)) << name;
  }
}

TEST(Safetensors, WritesTheSpecificationsLayout) {
  const std::string bytes = write_safetensors(every_dtype());
  const uint64_t length = header_length(bytes);
  EXPECT_EQ((8 + length) % 8, 0u) << "the data must start 8-byte aligned";
  const std::string header_text = bytes.substr(8, length);
  EXPECT_EQ(header_text.front(), '{');
  EXPECT_EQ(header_text.find_last_not_of(' '), header_text.rfind('}')) << "padded with spaces";
  const nlohmann::json header = header_of(bytes);
  EXPECT_EQ(header["__metadata__"]["model"], R"({"arch":"mlp"})");
  EXPECT_EQ(header["a.f32"]["dtype"], "F32");
  EXPECT_EQ(header["a.f32"]["shape"], nlohmann::json({3, 4}));
  EXPECT_EQ(header["k.scalar"]["shape"], nlohmann::json::array());
  EXPECT_EQ(header["j.bool"]["dtype"], "BOOL");
  EXPECT_EQ(header["d.bf16"]["dtype"], "BF16");
  // Larger elements first (8-byte, then 4, 2, 1), and within a size by name; each tensor's data
  // starts aligned to its element size and right after the previous one.
  const std::vector<std::string> order = {"b.f64",   "e.i64",        "a.f32", "f.i32",  "k.scalar",
                                          "l.empty", "m.transposed", "c.f16", "d.bf16", "g.i16",
                                          "h.i8",    "i.u8",         "j.bool"};
  uint64_t offset = 0;
  for (const auto& name : order) {
    const auto offsets = header[name]["data_offsets"];
    EXPECT_EQ(offsets[0].get<uint64_t>(), offset) << name;
    offset = offsets[1].get<uint64_t>();
  }
  EXPECT_EQ(8 + length + offset, bytes.size());
  // Raw little-endian values: the first f64 is where its offsets say.
  double first = 0;
  std::memcpy(&first, bytes.data() + 8 + length, 8);
  EXPECT_EQ(first, every_dtype().tensors[1].second[0].item<double>());
  // The transposed tensor is written in its logical (row-major) order.
  const uint64_t at = 8 + length + header["m.transposed"]["data_offsets"][0].get<uint64_t>();
  float values[6];
  std::memcpy(values, bytes.data() + at, sizeof values);
  EXPECT_EQ(std::vector<float>(values, values + 6), std::vector<float>({0, 3, 1, 4, 2, 5}));
}

TEST(Safetensors, WriterRefusesWhatTheFormatCannotHold) {
  SafetensorsFile file;
  file.tensors = {{"x", torch::zeros({2})}, {"x", torch::zeros({2})}};
  EXPECT_THROW(write_safetensors(file), tessera::Error);
  file.tensors = {{"", torch::zeros({2})}};
  EXPECT_THROW(write_safetensors(file), tessera::Error);
  file.tensors = {{"__metadata__", torch::zeros({2})}};
  EXPECT_THROW(write_safetensors(file), tessera::Error);
  file.tensors = {{"c", torch::zeros({2}, torch::kComplexFloat)}};
  EXPECT_THROW(write_safetensors(file), tessera::Error);
}

TEST(Safetensors, ReadsAnEmptyFileOfNoTensors) {
  EXPECT_TRUE(read_safetensors(raw_file("{}", ""), "empty").tensors.empty());
  EXPECT_TRUE(read_safetensors(write_safetensors({}), "empty").tensors.empty());
}

TEST(Safetensors, RefusesTruncatedFilesAndImpossibleHeaderLengths) {
  expect_refused("", "fewer than the header length");
  expect_refused(std::string(7, '\0'), "fewer than the header length");
  expect_refused(raw_file("{}", "", 1), "the header is not JSON");
  expect_refused(raw_file("{}", "", 100), "exceeds the 2 bytes");
  // A header claiming terabytes (or 2^64 - 1 bytes): refused without allocating it.
  expect_refused(raw_file("{}", "", int64_t{1} << 42), "exceeds the 2 bytes");
  std::string huge = raw_file("{}", "");
  std::memset(huge.data(), 0xff, 8);
  expect_refused(huge, "exceeds the 2 bytes");
  const std::string whole = write_safetensors(every_dtype());
  expect_refused(whole.substr(0, whole.size() - 1), "data bytes");
}

TEST(Safetensors, RefusesHeadersThatAreNotTheFormatsJson) {
  expect_refused(raw_file("[1, 2]", ""), "not a JSON object");
  expect_refused(raw_file("\"text\"", ""), "not a JSON object");
  expect_refused(raw_file("{\"a\":", ""), "not JSON");
  expect_refused(raw_file("\xff\xfe", ""), "not JSON");
  expect_refused(raw_file(R"({"a": 3})", ""), "not an object");
  expect_refused(raw_file(R"({"__metadata__": ["x"]})", ""), "\"__metadata__\" is not an object");
  expect_refused(raw_file(R"({"__metadata__": {"k": 1}})", ""), "entry 'k' is not a string");
  expect_refused(raw_file(std::string(1000, '[') + std::string(1000, ']'), ""), "nests deeper");
  std::string long_shape = R"({"a":{"dtype":"U8","shape":[)";
  for (int i = 0; i < 100; ++i) long_shape += "1,";
  expect_refused(raw_file(long_shape + "1],\"data_offsets\":[0,1]}}", "x"), "more than 64");
}

TEST(Safetensors, RefusesDuplicateNames) {
  const std::string entry = R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  expect_refused(raw_file("{\"a\":" + entry + ",\"a\":" + entry + "}", "x"), "'a' twice");
  expect_refused(
      raw_file(R"({"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}})", "x"),
      "'dtype' twice");
}

TEST(Safetensors, RefusesBadTensorEntries) {
  auto one = [](const std::string& fields, const std::string& data) {
    return raw_file("{\"t\":{" + fields + "}}", data);
  };
  expect_refused(one(R"("dtype":"F128","shape":[1],"data_offsets":[0,16])", std::string(16, 'x')),
                 "unknown dtype 'F128'");
  expect_refused(one(R"("shape":[1],"data_offsets":[0,1])", "x"), "no \"dtype\"");
  expect_refused(one(R"("dtype":"U8","data_offsets":[0,1])", "x"), "no \"shape\"");
  expect_refused(one(R"("dtype":"U8","shape":[1])", "x"), "no \"data_offsets\"");
  expect_refused(one(R"("dtype":"U8","shape":[-1],"data_offsets":[0,1])", "x"),
                 "not a non-negative integer");
  expect_refused(one(R"("dtype":"U8","shape":[1.5],"data_offsets":[0,1])", "x"),
                 "not a non-negative integer");
  expect_refused(one(R"("dtype":"U8","shape":[1],"data_offsets":[-1,1])", "x"),
                 "not a non-negative integer");
  // shape x dtype size != byte length
  expect_refused(one(R"("dtype":"F32","shape":[2],"data_offsets":[0,4])", "xxxx"), "holds 4 bytes");
  expect_refused(one(R"("dtype":"F32","shape":[1],"data_offsets":[0,3])", "xxx"), "holds 3 bytes");
  // A shape of 2^64 elements in 4 bytes: the product must not overflow into a match.
  expect_refused(
      one(R"("dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4])", "xxxx"),
      "overflows");
  expect_refused(one(R"("dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,4])", "xxxx"),
                 "overflows");
  // Offsets out of range, reversed, overlapping, with gaps, or short of the data.
  expect_refused(one(R"("dtype":"U8","shape":[8],"data_offsets":[0,8])", "xxxx"), "outside");
  expect_refused(one(R"("dtype":"U8","shape":[0],"data_offsets":[3,2])", "xxxx"), "outside");
  expect_refused(one(R"("dtype":"U8","shape":[2],"data_offsets":[2,4])", "xxxx"), "leaving a gap");
  expect_refused(one(R"("dtype":"U8","shape":[2],"data_offsets":[0,2])", "xxxx"),
                 "cover 2 of the 4");
  const std::string overlapping = R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                                  R"("b":{"dtype":"U8","shape":[3],"data_offsets":[1,4]}})";
  expect_refused(raw_file(overlapping, "xxxx"), "inside the previous tensor");
}

TEST(Safetensors, NeverCrashesOnCorruptedCopiesOfAValidFile) {
  // Every single-byte corruption of a small valid file either reads or fails with tessera::Error.
  SafetensorsFile file;
  file.tensors = {{"w", torch::ones({2, 2})}, {"n", torch::tensor({1, 2}, torch::kInt64)}};
  file.metadata = {{"k", "v"}};
  const std::string bytes = write_safetensors(file);
  for (size_t at = 0; at < bytes.size(); ++at)
    for (unsigned char value : {0x00, 0x22, 0x5b, 0x7b, 0xff}) {
      std::string corrupt = bytes;
      corrupt[at] = static_cast<char>(value);
      try {
        read_safetensors(corrupt, "corrupt");
      } catch (const tessera::Error&) {
      }
    }
}
