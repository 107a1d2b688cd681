// The tessera commands shown to users in README.md, docs/*.md and scripts/demo.sh, and their
// smoke-sized versions. A command is a line of a ``` block (of the whole file for a script) whose
// program, after any VAR=value prefixes, is ./build/tessera; lines ending in '\' continue, '#'
// starts a comment, and NAME="..." lines of the same block define $NAME for the lines after it.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace tessera::testing {

struct DocCommand {
  std::string file;                // relative to the source tree
  int line = 0;                    // 1-based line where the command starts
  std::vector<std::string> words;  // env assignments first, then ./build/tessera and its arguments
  int producer = -1;  // index (in the same file's list) of the command whose run directory this one
                      // reads (--checkpoint DIR/..., or --resume), or -1
};

// Splits a shell line into words: whitespace separates, double or single quotes group.
inline std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote != 0) {
      if (c == quote)
        quote = 0;
      else
        word += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

// The value of flag `name` in `words` (as "--name V" or "--name=V"), or "".
inline std::string flag_value(const std::vector<std::string>& words, const std::string& name) {
  for (size_t i = 0; i < words.size(); ++i) {
    if (words[i] == name && i + 1 < words.size()) return words[i + 1];
    if (words[i].rfind(name + "=", 0) == 0) return words[i].substr(name.size() + 1);
  }
  return "";
}

inline bool has_word(const std::vector<std::string>& words, const std::string& word) {
  for (const auto& w : words)
    if (w == word) return true;
  return false;
}

inline bool is_env_assignment(const std::string& word) {
  const size_t eq = word.find('=');
  return eq != std::string::npos && eq > 0 && word[0] != '-' &&
         word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == eq;
}

inline std::string strip_comment(const std::string& line) {
  const size_t hash = line.find(" #");
  std::string kept = line.rfind("#", 0) == 0 ? "" : line.substr(0, hash);
  while (!kept.empty() && (kept.back() == ' ' || kept.back() == '\t')) kept.pop_back();
  return kept;
}

// Words with $NAME replaced by the words of the variable's value, and "$@" dropped.
inline std::vector<std::string> expand(const std::vector<std::string>& words,
                                       const std::map<std::string, std::string>& variables) {
  std::vector<std::string> out;
  for (const auto& w : words) {
    if (w == "$@") continue;  // a script's own arguments: none here
    if (w.size() > 1 && w[0] == '$' && variables.count(w.substr(1)) != 0) {
      for (const auto& v : shell_words(variables.at(w.substr(1)))) out.push_back(v);
    } else {
      out.push_back(w);
    }
  }
  return out;
}

// The first run directory `tessera report` is given, or "" for any other command.
inline std::string report_input(const std::vector<std::string>& words) {
  for (size_t i = 0; i + 1 < words.size(); ++i)
    if (words[i] == "report" && words[i + 1].rfind("-", 0) != 0) return words[i + 1];
  return "";
}

// Links each command that reads an earlier command's run directory to that command.
inline void link_producers(std::vector<DocCommand>& commands) {
  for (size_t i = 0; i < commands.size(); ++i) {
    std::string reads = flag_value(commands[i].words, "--checkpoint");
    if (!reads.empty()) reads = reads.substr(0, reads.rfind('/'));
    if (has_word(commands[i].words, "--resume")) reads = flag_value(commands[i].words, "--run-dir");
    if (reads.empty()) reads = report_input(commands[i].words);
    if (reads.empty()) continue;
    for (size_t j = 0; j < i; ++j)
      if (flag_value(commands[j].words, "--run-dir") == reads) commands[i].producer = int(j);
  }
}

// The commands of `text` (markdown when `markdown`, else a shell script), named `file`.
inline std::vector<DocCommand> doc_commands(const std::string& text, const std::string& file,
                                            bool markdown) {
  std::vector<DocCommand> commands;
  std::map<std::string, std::string> variables;
  std::istringstream in(text);
  std::string line;
  std::string pending;
  int number = 0;
  int start = 0;
  bool in_block = !markdown;
  while (std::getline(in, line)) {
    ++number;
    if (markdown && line.rfind("```", 0) == 0) {
      in_block = !in_block;
      variables.clear();
      continue;
    }
    if (!in_block) continue;
    if (pending.empty()) start = number;
    const bool continues = !line.empty() && line.back() == '\\';
    pending += strip_comment(continues ? line.substr(0, line.size() - 1) : line) + " ";
    if (continues) continue;
    std::vector<std::string> words = expand(shell_words(pending), variables);
    pending.clear();
    size_t program = 0;
    while (program < words.size() && is_env_assignment(words[program])) ++program;
    if (program == words.size() && words.size() == 1) {  // NAME=value defines $NAME
      const size_t eq = words[0].find('=');
      variables[words[0].substr(0, eq)] = words[0].substr(eq + 1);
    } else if (program < words.size() && words[program] == "./build/tessera") {
      commands.push_back({file, start, words, -1});
    }
  }
  link_producers(commands);
  return commands;
}

inline std::vector<DocCommand> doc_commands_in_file(const std::string& source_dir,
                                                    const std::string& file) {
  std::ifstream in(source_dir + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  const bool markdown = file.size() > 3 && file.substr(file.size() - 3) == ".md";
  return doc_commands(text.str(), file, markdown);
}

// Settings of the smoke-sized version of a command.
struct SmokeSize {
  std::string binary;               // replaces ./build/tessera
  std::string scratch;              // relative run directories and checkpoints go below it
  int64_t limit_train = 2000;       // the default MLP
  int64_t conv_limit_train = 6000;  // other families (convolutions, attention) learn slower
  int64_t limit_test = 1000;
  // A language model's samples are windows of --seq-len bytes (64 by default): 20 steps of its
  // default batch of 64 (cli::kLlamaBatchSize), and 16 windows to evaluate.
  int64_t text_limit_train = 1280;
  int64_t text_limit_test = 16;
};

// The command as the test runs it: the same flags, but one epoch (two when resuming), at most
// `limit_train` (`conv_limit_train` for a --model other than mlp) / `limit_test` samples of the
// real data set, quiet, and paths below `scratch`.
// Returns a shell command line.
inline std::string smoke_version(const DocCommand& command, const SmokeSize& size) {
  const std::vector<std::string>& in = command.words;
  std::vector<std::string> out;
  const bool resume = has_word(in, "--resume");
  const std::string model = flag_value(in, "--model");
  const bool text = model == "llama" || flag_value(in, "--data") == "text";
  const int64_t limit_train = text                              ? size.text_limit_train
                              : model.empty() || model == "mlp" ? size.limit_train
                                                                : size.conv_limit_train;
  const int64_t limit_test = text ? size.text_limit_test : size.limit_test;
  auto path = [&](const std::string& p) {
    return size.scratch + "/" + (p.rfind("/", 0) == 0 ? p.substr(1) : p);
  };
  bool training = false;  // inside a train or pnn command (after launch's "--" too)
  bool has_limit_train = false;
  bool has_limit_test = false;
  bool has_quiet = false;
  bool has_epochs = false;
  auto finish_training = [&]() {
    if (!training) return;
    if (!has_epochs) out.insert(out.end(), {"--epochs", resume ? "2" : "1"});
    if (!has_limit_train) out.insert(out.end(), {"--limit-train", std::to_string(limit_train)});
    if (!has_limit_test) out.insert(out.end(), {"--limit-test", std::to_string(limit_test)});
    if (!has_quiet) out.push_back("--quiet");
  };
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string& w = in[i];
    const bool has_next = i + 1 < in.size();
    if (w == "./build/tessera") {
      out.push_back(size.binary);
    } else if ((w == "train" || w == "pnn") && !out.empty() &&
               (out.back() == size.binary || out.back() == "tessera")) {
      training = true;
      out.push_back(w);
    } else if (w == "eval" && !out.empty() && out.back() == size.binary) {
      out.push_back(w);
      out.insert(out.end(), {"--limit-test", std::to_string(limit_test)});
    } else if (w == "--epochs" && has_next) {
      out.insert(out.end(), {w, resume ? "2" : "1"});
      has_epochs = true;
      ++i;
    } else if (w == "--limit-train" && has_next) {
      out.insert(out.end(), {w, std::to_string(limit_train)});
      has_limit_train = true;
      ++i;
    } else if (w == "--limit-test" && has_next) {
      out.insert(out.end(), {w, std::to_string(limit_test)});
      has_limit_test = true;
      ++i;
    } else if ((w == "--run-dir" || w == "--checkpoint" || w == "--output") && has_next) {
      out.insert(out.end(), {w, path(in[i + 1])});
      ++i;
    } else {
      if (w == "--quiet") has_quiet = true;
      out.push_back(w);
    }
  }
  // A synthetic set is already small, and sized by its own flags.
  if (flag_value(in, "--data") == "synthetic") has_limit_train = has_limit_test = true;
  finish_training();
  std::string line;
  for (const auto& w : out) {
    const bool plain = is_env_assignment(w) || w.find_first_of(" '\"$;&|<>*?") == std::string::npos;
    line += (line.empty() ? "" : " ") + (plain ? w : "'" + w + "'");
  }
  return line;
}

}  // namespace tessera::testing
