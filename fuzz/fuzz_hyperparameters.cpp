// Fuzzes the JSON configuration reader: text -> JSON (nlohmann; its exceptions are the caller's to turn into
// microcount::error, as the program's --config does: every nlohmann::json::exception, not only parse_error,
// since a number too large for a double is out_of_range 406) -> train::from_json, which must reject every
// bad value by name. The checkpoint's copy of the hyperparameters goes through the same from_json.
#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "microcount/train/hyperparameters.hpp"

MICROCOUNT_FUZZ_TARGET(hyperparameters) {
  using namespace microcount;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fuzz::as_text(data, size));
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  fuzz::guarded([&] {
    if (j.is_object() && j.contains("hyperparameters") && j.at("hyperparameters").is_object()) j = j.at("hyperparameters");
    const train::hyperparameters h = train::from_json(j, {}, "fuzz.json");
    // What was accepted must survive the round trip the run folder and checkpoints make.
    const train::hyperparameters again = train::from_json(train::to_json(h), {}, "fuzz.json (again)");
    if (train::to_json(again) != train::to_json(h)) std::abort();
  });
  return 0;
}
