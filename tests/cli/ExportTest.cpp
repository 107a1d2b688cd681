// `tessera export` to safetensors: tessera evaluates the exported file exactly as the checkpoint,
// and Python with only the standard library and numpy reads the same tensors and computes the same
// logits (read_safetensors.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "../command_output.h"
#include "../test_support.h"
#include "tessera/train/model_file.h"

namespace export_test {

using tessera::testing::fresh_dir;
using tessera::testing::read_json;
using tessera::testing::run_command;

tessera::testing::CommandResult run_tessera(const std::string& args) {
  return run_command(std::string(TESSERA_BINARY) + " " + args + " 2>&1");
}

const std::string kData =
    "--data synthetic --synthetic-train 256 --synthetic-test 128 --synthetic-shape 1,6,6";

// A trained MLP's checkpoint and its export in a fresh directory.
std::string train_and_export(const std::string& name) {
  const std::string dir = fresh_dir(name);
  auto r = run_tessera("train " + kData +
                       " --hidden 16,12 --batch-size 32 --epochs 1 --threads 1 --quiet --run-dir " +
                       dir);
  EXPECT_EQ(r.code, 0) << r.output;
  r = run_tessera("export --checkpoint " + dir + "/checkpoint.pt --out " + dir +
                  "/model.safetensors");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 6 tensors"), std::string::npos) << r.output;
  return dir;
}

nlohmann::json flat_values(const torch::Tensor& tensor) {
  const torch::Tensor flat = tensor.detach().to(torch::kFloat64).flatten().contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

// What tessera itself holds and computes: every tensor, and the logits of a batch.
void write_reference(const std::string& checkpoint, const std::string& path) {
  tessera::train::LoadedModel loaded = tessera::train::load_model(checkpoint);
  nlohmann::json reference = {{"config", loaded.meta.at("model")}};
  for (const auto& item : loaded.model->named_parameters())
    reference["tensors"][item.key()] = flat_values(item.value());
  torch::manual_seed(11);
  const torch::Tensor input = torch::randn({5, 1, 6, 6});
  torch::NoGradGuard no_grad;
  loaded.model->eval();
  reference["input"] = flat_values(input);
  reference["input_shape"] = input.sizes().vec();
  reference["logits"] = flat_values(loaded.model->forward(input));
  std::ofstream(path) << reference.dump();
}

TEST(Export, EvalOfTheSafetensorsFileMatchesTheCheckpoint) {
  const std::string dir = train_and_export("cli_export_eval");
  for (const char* file : {"checkpoint.pt", "model.safetensors"}) {
    const auto r = run_tessera("eval --checkpoint " + dir + "/" + file + " " + kData +
                               " --threads 1 --output " + dir + "/" + file + ".json");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  const auto checkpoint = read_json(dir + "/checkpoint.pt.json");
  const auto exported = read_json(dir + "/model.safetensors.json");
  EXPECT_EQ(exported["test_accuracy"], checkpoint["test_accuracy"]);
  EXPECT_EQ(exported["test_loss"], checkpoint["test_loss"]);
  EXPECT_GT(checkpoint["test_accuracy"].get<double>(), 0.0);

  // Training can start from it too.
  const auto r = run_tessera("train " + kData + " --hidden 16,12 --epochs 1 --threads 1 --quiet " +
                             "--init-from " + dir + "/model.safetensors");
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(Export, PythonWithNumpyReadsTheSameTensorsAndLogits) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with numpy (Debian: python3-numpy)";
  const std::string dir = train_and_export("cli_export_python");
  write_reference(dir + "/checkpoint.pt", dir + "/reference.json");
  const auto r = run_command("/usr/bin/python3 " + std::string(TESSERA_SOURCE_DIR) +
                             "/tests/cli/read_safetensors.py " + dir + "/model.safetensors " + dir +
                             "/reference.json 2>&1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("OK 6 tensors, logits [5, 10]"), std::string::npos) << r.output;
}

TEST(Export, BadInputsAreClearErrors) {
  const std::string dir = fresh_dir("cli_export_errors");
  auto r =
      run_tessera("export --checkpoint " + dir + "/missing.pt --out " + dir + "/m.safetensors");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + "/missing.pt"), std::string::npos) << r.output;
  EXPECT_EQ(run_tessera("export --checkpoint x.pt").code, 2);  // --out is required

  std::ofstream(dir + "/garbage.bin") << "this is not a model";
  r = run_tessera("eval --checkpoint " + dir + "/garbage.bin " + kData);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("neither a tessera checkpoint"), std::string::npos) << r.output;

  // A valid safetensors file that tessera did not write: no model description.
  std::string foreign(8, '\0');
  const std::string header = R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}  )";
  foreign[0] = static_cast<char>(header.size());
  std::ofstream(dir + "/foreign.safetensors", std::ios::binary) << foreign << header << "ab";
  r = run_tessera("generate --checkpoint " + dir + "/foreign.safetensors");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("no tessera model description"), std::string::npos) << r.output;

  // A truncated export names the file and the problem.
  const std::string trained = train_and_export("cli_export_truncated");
  std::ifstream in(trained + "/model.safetensors", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir + "/cut.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  r = run_tessera("eval --checkpoint " + dir + "/cut.safetensors " + kData);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + "/cut.safetensors is invalid"), std::string::npos) << r.output;

  r = run_tessera("export --checkpoint " + trained + "/checkpoint.pt --out /nonexistent/m.st");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
}

}  // namespace export_test
