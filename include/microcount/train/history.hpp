#pragma once
// What a training run records per epoch: the rows of the training curves, log.txt and the checkpoints'
// history (so a resumed run draws the whole curve).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

namespace microcount::train {

inline constexpr double not_measured = std::numeric_limits<double>::quiet_NaN();

struct epoch_record {
  std::int64_t epoch = 0;               // 1-based
  double train_loss = not_measured;     // mean loss over the epoch's batches
  double val_loss = not_measured;       // mean loss over the validation images (NaN: no validation set)
  double val_mae = not_measured;        // validation count MAE (all classes together)
  double val_f1 = not_measured;         // validation detection F1 (NaN for heads without points)
  double learning_rate = not_measured;  // at the end of the epoch
  double seconds = 0;                   // wall time of the epoch, validation included
};

using history = std::vector<epoch_record>;

namespace history_detail {
inline nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }
inline double number_or_nan(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<double>() : not_measured;
}
}  // namespace history_detail

inline nlohmann::json to_json(const epoch_record& r) {
  using history_detail::number_or_null;
  return {{"epoch", r.epoch},
          {"train_loss", number_or_null(r.train_loss)},
          {"val_loss", number_or_null(r.val_loss)},
          {"val_mae", number_or_null(r.val_mae)},
          {"val_f1", number_or_null(r.val_f1)},
          {"learning_rate", number_or_null(r.learning_rate)},
          {"seconds", r.seconds}};
}

inline epoch_record epoch_record_from_json(const nlohmann::json& j) {
  using history_detail::number_or_nan;
  epoch_record r;
  r.epoch = j.at("epoch").get<std::int64_t>();
  r.train_loss = number_or_nan(j, "train_loss");
  r.val_loss = number_or_nan(j, "val_loss");
  r.val_mae = number_or_nan(j, "val_mae");
  r.val_f1 = number_or_nan(j, "val_f1");
  r.learning_rate = number_or_nan(j, "learning_rate");
  r.seconds = number_or_nan(j, "seconds");
  return r;
}

inline nlohmann::json to_json(const history& h) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : h) a.push_back(to_json(r));
  return a;
}

inline history history_from_json(const nlohmann::json& a) {
  history h;
  for (const auto& j : a) h.push_back(epoch_record_from_json(j));
  return h;
}

}  // namespace microcount::train
