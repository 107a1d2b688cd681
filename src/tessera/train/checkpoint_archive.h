// Structural checks of a checkpoint file before libtorch reads it. A checkpoint is a zip archive
// (libtorch's serialization format, always with zip64 records) of records under one folder:
// `<folder>/version`, `<folder>/data.pkl`, `<folder>/data/<n>`, TorchScript code, ...
//
// Why: libtorch 1.13's reader (miniz + the TorchScript importer) gives an error for most damaged
// archives, but on some of them it first leaks the archive state it had read (its
// PyTorchStreamReader constructor throws after mz_zip_reader_init: no files, a first record not
// in a folder, a missing, unreadable or unsupported version record), and its messages name
// miniz's internals. These checks reject all of those, and every record that points outside the
// file, with a message naming the file and the problem, reading only the archive's directory.
#pragma once

#include <string>

namespace tessera::train {

// Throws tessera::Error naming `path` unless it is a zip archive whose directory, every local
// record header and data range lie inside the file, whose first record is in a folder, and whose
// `<folder>/version` record is a stored decimal number libtorch supports (1..10).
void check_checkpoint_archive(const std::string& path);

}  // namespace tessera::train
