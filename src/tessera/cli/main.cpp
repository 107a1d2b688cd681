#include "tessera/cli/main.h"

#include <iostream>

namespace tessera::cli {

int main(int, char**) {
  std::cout << "tessera\n";
  return 0;
}

}  // namespace tessera::cli
