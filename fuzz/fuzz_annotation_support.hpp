#pragma once
// What every annotation harness does with what a reader accepted: the checks the program runs
// (validate) and writing it back out in the same format family, neither of which may crash.
#include "fuzz_support.hpp"
#include "microcount/io/annotation_common.hpp"
#include "microcount/io/annotations.hpp"

namespace microcount::fuzz {

template <class Write>
void use_accepted(const io::annotations& ann, Write&& write) {
  (void)io::validate(ann);
  (void)ann.points_per_label();
  guarded([&] { (void)write(ann); });
}

}  // namespace microcount::fuzz
