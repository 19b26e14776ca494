// microcount — the command-line program. Sub-commands live in cmd_*.cpp beside this file.
// Any bad input ends with exit status 1 and one line on stderr naming the file and the problem.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "command.hpp"

namespace {
void print_help() {
  std::printf("microcount — count and detect point-like objects in microscopy images\n\n"
              "usage: microcount COMMAND [ARGS…]   (microcount COMMAND --help for details)\n\ncommands:\n");
  auto cmds = microcount::cli::commands();
  std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (const auto& c : cmds) std::printf("  %-12s %s\n", c.name.c_str(), c.summary.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help();
    return args.empty() ? 1 : 0;
  }
  for (const auto& c : microcount::cli::commands()) {
    if (c.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
      std::printf("%s\n", c.usage.c_str());
      return 0;
    }
    try {
      return c.run(rest);
    } catch (const microcount::error& e) {
      std::fprintf(stderr, "microcount %s: %s\n", c.name.c_str(), e.what());
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "microcount %s: out of memory\n", c.name.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "microcount %s: %s\n", c.name.c_str(), e.what());
    }
    return 1;
  }
  std::fprintf(stderr, "microcount: unknown command '%s' (microcount --help lists them)\n", args[0].c_str());
  return 1;
}
