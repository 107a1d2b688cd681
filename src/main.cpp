#include "tessera/cli/main.h"

int main(int argc, char** argv) {
  return tessera::cli::main(argc, argv);
}
