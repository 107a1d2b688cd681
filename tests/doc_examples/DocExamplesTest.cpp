// Every tessera command shown in README.md, docs/*.md and scripts/demo.sh runs here, smoke-sized
// (one epoch on 2,000 training and 1,000 test samples, otherwise the same flags), and a command
// that trains must learn above chance, so that an example can never rot silently. Each command is
// its own test case (ctest runs them in parallel); one that reads another's run directory (eval,
// --resume) runs that command first in its own scratch directory.
#include <algorithm>
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "../test_support.h"
#include "doc_commands.h"

namespace tessera::testing {
namespace {

// Ten classes everywhere here (Fashion-MNIST, the synthetic sets of the examples): chance is 10%,
// with a standard deviation of 0.95 points on the 1,000 test samples of a smoke run, so 13% is
// three deviations above chance: learning, not luck. (A collapsed run sits at exactly 10.00%.)
constexpr double kAboveChance = 0.13;
// A language model has learned something once its validation loss is below uniform guessing's 8
// bits per byte by a clear margin (unigram statistics alone give about 4.8 on the fortunes text).
constexpr double kLanguageModelBitsPerByte = 7.0;
// A run of fewer optimizer steps is a throughput measurement (docs/results.md's ResNet-18 lines):
// it must run and write its summary, but has had no time to learn.
constexpr int64_t kStepsToLearn = 10;

// Known shortfalls, each an open issue: reported by the test, not asserted.
bool known_shortfall(const DocCommand& command, const std::string& where) {
  const std::string model = flag_value(command.words, "--model");
  // PNN's parallel schedule on CNNs (issue 19, item 3): the first partition cannot reach its
  // synthetic labels, so the joined model is at chance until recovery.
  return (model == "resnet" || model == "wrn") && where.find("parallel") != std::string::npos;
}

std::vector<std::string> documented_files() {
  std::vector<std::string> files = {"README.md", "scripts/demo.sh"};
  std::vector<std::string> docs;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(TESSERA_SOURCE_DIR) + "/docs"))
    if (entry.path().extension() == ".md")
      docs.push_back("docs/" + entry.path().filename().string());
  std::sort(docs.begin(), docs.end());
  files.insert(files.end(), docs.begin(), docs.end());
  return files;
}

struct Example {
  DocCommand command;
  std::vector<DocCommand> file_commands;  // to find its producer
};

std::vector<Example> all_examples() {
  std::vector<Example> examples;
  for (const auto& file : documented_files()) {
    const auto commands = doc_commands_in_file(TESSERA_SOURCE_DIR, file);
    for (const auto& c : commands) examples.push_back({c, commands});
  }
  return examples;
}

// What gtest prints for a parameter (instead of its bytes).
void PrintTo(const Example& example, std::ostream* os) {
  *os << example.command.file << ":" << example.command.line;
}

std::string example_name(const ::testing::TestParamInfo<Example>& info) {
  std::string name = info.param.command.file + "_line" + std::to_string(info.param.command.line);
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

// Every final "test_accuracy" and "joined_test_accuracy" in a summary, wherever it is nested;
// not those of histories and curves (the first evaluation may come before any learning), nor a
// PNN partition's own (a partition regressing synthetic labels has no accuracy).
void collect_accuracies(const nlohmann::json& value,
                        std::vector<std::pair<std::string, double>>& out,
                        const std::string& where) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      // A negative value stands for "none" (the conventional row's joined accuracy).
      if ((key == "test_accuracy" || key == "joined_test_accuracy") && item.is_number() &&
          item.get<double>() >= 0)
        out.push_back(
            {where + (value.contains("run") ? "(" + value["run"].dump() + ")" : "") + "/" + key,
             item.get<double>()});
      else if (key != "history" && key != "curve" && key != "partitions")
        collect_accuracies(item, out, where + "/" + key);
    }
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i)
      collect_accuracies(value[i], out, where + "[" + std::to_string(i) + "]");
  }
}

class DocExample : public ::testing::TestWithParam<Example> {};

TEST_P(DocExample, RunsAndLearnsAboveChance) {
  const Example& example = GetParam();
  SmokeSize size;
  size.binary = TESSERA_BINARY;
  size.scratch = fresh_dir("doc_examples_" + example_name({example, 0}));
  // Sleeping OpenMP threads: ctest runs examples side by side, and spinning ones would crawl.
  setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
  // The commands whose run directories it reads (eval after --resume after train), first first.
  std::vector<const DocCommand*> producers;
  for (int p = example.command.producer; p >= 0; p = producers.back()->producer)
    producers.push_back(&example.file_commands[static_cast<size_t>(p)]);
  for (auto it = producers.rbegin(); it != producers.rend(); ++it) {
    const auto first =
        run_command("cd " + size.scratch + " && " + smoke_version(**it, size) + " 2>&1");
    ASSERT_EQ(first.code, 0) << "the command it reads from, " << (*it)->file << ":" << (*it)->line
                             << "\n"
                             << first.output;
  }
  const std::string line = smoke_version(example.command, size);
  const auto result = run_command("cd " + size.scratch + " && " + line + " 2>&1");
  ASSERT_EQ(result.code, 0) << line << "\n" << result.output;

  const std::string run_dir = flag_value(example.command.words, "--run-dir");
  std::vector<std::pair<std::string, double>> accuracies;
  if (!run_dir.empty() && !has_word(example.command.words, "--help")) {
    const std::string summary = size.scratch + "/" +
                                (run_dir.rfind("/", 0) == 0 ? run_dir.substr(1) : run_dir) +
                                "/summary.json";
    ASSERT_TRUE(std::filesystem::exists(summary)) << line << "\n" << result.output;
    const nlohmann::json json = read_json(summary);
    if (json.contains("test_bits_per_byte")) {  // a language model: bits, not accuracy
      EXPECT_LT(json["test_bits_per_byte"].get<double>(), kLanguageModelBitsPerByte)
          << line << "\n"
          << result.output;
      return;
    }
    collect_accuracies(json, accuracies, "summary.json");
    EXPECT_FALSE(accuracies.empty()) << summary << " holds no test accuracy";
    if (json.contains("steps") && json["steps"].get<int64_t>() < kStepsToLearn) {
      std::printf("%lld steps: a throughput run, its accuracy is not checked\n",
                  static_cast<long long>(json["steps"].get<int64_t>()));
      return;
    }
  }
  // What it printed (eval, and runs without a run directory).
  const std::regex printed("test accuracy ([0-9.]+)%");
  for (auto it = std::sregex_iterator(result.output.begin(), result.output.end(), printed);
       it != std::sregex_iterator(); ++it)
    accuracies.push_back({"printed", std::stod((*it)[1]) / 100.0});
  for (const auto& [where, accuracy] : accuracies) {
    if (known_shortfall(example.command, where)) {
      std::printf("known shortfall (see the issues), not checked: %s = %.4f\n", where.c_str(),
                  accuracy);
      continue;
    }
    EXPECT_GT(accuracy, kAboveChance) << where << " of " << line << "\n" << result.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Documented, DocExample, ::testing::ValuesIn(all_examples()), example_name);

// The parsing the smoke tests rely on.
TEST(DocCommands, FindsCommandsInBlocksWithContinuationsVariablesAndProducers) {
  const std::string text =
      "Some prose with ./build/tessera train outside a block.\n"
      "```sh\n"
      "./build/tessera train --epochs 10 --run-dir runs/a   # a comment\n"
      "R=\"--model resnet --depth 20\"\n"
      "OMP_WAIT_POLICY=PASSIVE ./build/tessera launch -n 2 -- tessera train $R \\\n"
      "    --limit-train 30000\n"
      "./build/tessera eval --checkpoint runs/a/checkpoint.pt\n"
      "bash scripts/demo.sh\n"
      "./build/tessera report runs/a --out a.html\n"
      "```\n";
  const auto commands = doc_commands(text, "X.md", /*markdown=*/true);
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[0].line, 3);
  EXPECT_EQ(commands[0].words.back(), "runs/a");
  EXPECT_EQ(commands[1].line, 5);
  EXPECT_EQ(commands[1].words,
            (std::vector<std::string>{"OMP_WAIT_POLICY=PASSIVE", "./build/tessera", "launch", "-n",
                                      "2", "--", "tessera", "train", "--model", "resnet", "--depth",
                                      "20", "--limit-train", "30000"}));
  EXPECT_EQ(commands[2].producer, 0);
  EXPECT_EQ(commands[1].producer, -1);
  EXPECT_EQ(commands[3].producer, 0) << "tessera report reads the run directory it is given";
}

TEST(DocCommands, TheSmokeVersionShrinksTheBudgetAndKeepsEveryOtherFlag) {
  SmokeSize size;
  size.binary = "/bin/tessera";
  size.scratch = "/s";
  DocCommand launch{"X.md", 1,
                    shell_words("OMP_WAIT_POLICY=PASSIVE ./build/tessera launch -n 4 -- tessera "
                                "train --dist sdp --coverage 0.5 --epochs 6 --limit-train 30000 "
                                "--run-dir runs/sdp"),
                    -1};
  EXPECT_EQ(smoke_version(launch, size),
            "OMP_WAIT_POLICY=PASSIVE /bin/tessera launch -n 4 -- tessera train --dist sdp "
            "--coverage 0.5 --epochs 1 --limit-train 2000 --run-dir /s/runs/sdp --limit-test "
            "1000 --quiet");
  DocCommand resume{"X.md", 2, shell_words("./build/tessera train --run-dir /tmp/r --resume"), -1};
  EXPECT_EQ(smoke_version(resume, size),
            "/bin/tessera train --run-dir /s/tmp/r --resume --epochs 2 --limit-train 2000 "
            "--limit-test 1000 --quiet");
}

TEST(DocCommands, TheReadmeShowsCommandsOfEverySubcommand) {
  const auto commands = doc_commands_in_file(TESSERA_SOURCE_DIR, "README.md");
  for (const std::string subcommand : {"train", "eval", "pnn", "launch", "info", "report"}) {
    const bool shown = std::any_of(commands.begin(), commands.end(), [&](const DocCommand& c) {
      return c.words.size() > 1 && has_word(c.words, subcommand);
    });
    EXPECT_TRUE(shown) << "README.md shows no `tessera " << subcommand << "` command";
  }
}

}  // namespace
}  // namespace tessera::testing
