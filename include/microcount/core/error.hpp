#pragma once
// microcount::error — the one exception type for bad input and failed operations.
// Every message names the file (or the object) and what is wrong, e.g.
//   "image_007.tif: truncated strip 3 (expected 65536 bytes, got 120)".
#include <stdexcept>
#include <string>
#include <string_view>

namespace microcount {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
  error(std::string_view where, std::string_view problem)
      : std::runtime_error(std::string(where) + ": " + std::string(problem)), where_(where) {}
  // The file or object the problem is about ("" when the message has no subject).
  [[nodiscard]] const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

// Throws microcount::error(where, problem) unless `ok`.
inline void require(bool ok, std::string_view where, std::string_view problem) {
  if (!ok) throw error(where, problem);
}

}  // namespace microcount
