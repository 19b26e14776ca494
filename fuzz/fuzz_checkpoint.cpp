// Fuzzes the checkpoint reader (io/checkpoint.hpp): verify, read the header, load into a model state.
// A mutated file almost never keeps a valid CRC-32, which would stop every input at the checksum; so each
// input is tried twice, as given and with its last four bytes replaced by the correct CRC, which lets the
// fuzzer reach the header and tensor-table checks behind it.
#include <cstring>

#include "fuzz_checkpoint_state.hpp"
#include "fuzz_support.hpp"

namespace {
void load(const std::filesystem::path& file) {
  using namespace microcount;
  fuzz::guarded([&] {
    const io::checkpoint_file f(file);
    (void)f.read_header();
    fuzz::checkpoint_model m;
    (void)f.load_into(m.state, fuzz::checkpoint_architecture);
  });
}
}  // namespace

MICROCOUNT_FUZZ_TARGET(checkpoint) {
  using namespace microcount;
  load(fuzz::as_file(data, size, ".mcm"));
  if (size >= 4) {
    std::string fixed = fuzz::as_text(data, size);
    const std::uint32_t crc =
        io::detail::crc32_update(0, reinterpret_cast<const unsigned char*>(fixed.data()), fixed.size() - 4);
    std::memcpy(fixed.data() + fixed.size() - 4, &crc, 4);
    load(fuzz::as_file(reinterpret_cast<const std::uint8_t*>(fixed.data()), fixed.size(), ".mcm"));
  }
  return 0;
}
