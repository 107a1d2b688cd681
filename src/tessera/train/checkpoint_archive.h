// Structural checks of a checkpoint file before libtorch reads it. A checkpoint is a zip archive
// (libtorch's serialization format, always with zip64 records) of records under one folder:
// `<folder>/version`, `<folder>/data.pkl`, `<folder>/data/<n>`, TorchScript code, ...
//
// Why: libtorch 1.13's reader (miniz + the unpickler + the TorchScript importer) checks little of
// this. It does not check the records' CRC-32, so a damaged byte in a weight loads silently and
// one in a TorchScript code record reaches its parser, which can crash on it (SEGV in
// ScriptTypeParser::parseClassConstant, found by fuzz_checkpoint); on some damaged archives it
// leaks the state it had read (its PyTorchStreamReader constructor throws after
// mz_zip_reader_init); its messages name miniz's internals. These checks reject all of those with
// a message naming the file and the problem. They read the whole file once, in 1 MiB pieces. A
// file crafted with correct CRCs can still reach libtorch's parsers:
// load checkpoints only from sources you trust (docs/robustness.md).
#pragma once

#include <string>

namespace tessera::train {

// Throws tessera::Error naming `path` unless it is a zip archive whose directory, every local
// record header and data range lie inside the file, whose every record (stored or deflated) holds
// the content its CRC-32 and size declare, whose first record is in a folder, and whose
// `<folder>/version` record is a stored decimal number libtorch supports (1..10).
void check_checkpoint_archive(const std::string& path);

}  // namespace tessera::train
