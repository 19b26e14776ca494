#pragma once
// Learning-rate schedules: pure host code, PyTorch's formulas in closed form.
//   step_lr                 lr(e) = base · γ^⌊e / step_size⌋                       (StepLR)
//   cosine_annealing_lr     lr(e) = η_min + (base − η_min)(1 + cos(π e / T_max))/2  (CosineAnnealingLR)
//   one_cycle_lr            warm-up then cosine annealing, and the inverse momentum cycle (OneCycleLR)
//   reduce_lr_on_plateau    multiplies the rate by `factor` when a metric stops improving (ReduceLROnPlateau)
// The first three are functions of the epoch or step index (the caller counts; nothing to checkpoint).
// reduce_lr_on_plateau has state: for_each_state(f) visits f(name, double&) and f(name, std::int64_t&).
// Formulas and how they match PyTorch: docs/training_math.md.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>

#include "microcount/core/error.hpp"

namespace microcount::nn {

// A schedule maps an index (epoch or optimizer step, from 0) to a learning rate.
template <class S>
concept lr_schedule = requires(const S& s, std::int64_t i) {
  { s(i) } -> std::convertible_to<double>;
};

namespace schedule_detail {
inline void check(bool ok, std::string_view who, std::string_view what) { require(ok, who, what); }
inline void check_index(std::int64_t i, std::string_view who) {
  require(i >= 0, who, "the epoch / step index must be ≥ 0, got " + std::to_string(i));
}
// Cosine interpolation from `start` (pct 0) to `end` (pct 1).
inline double cosine_between(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
}
}  // namespace schedule_detail

// StepLR: the rate is multiplied by gamma every step_size epochs.
struct step_lr {
  double base_lr = 1e-3;
  std::int64_t step_size = 30;
  double gamma = 0.1;

  [[nodiscard]] double operator()(std::int64_t epoch) const {
    schedule_detail::check_index(epoch, "step_lr");
    schedule_detail::check(step_size > 0, "step_lr", "step_size must be > 0");
    return base_lr * std::pow(gamma, static_cast<double>(epoch / step_size));
  }
};

// CosineAnnealingLR (closed form): from base_lr at 0 to eta_min at t_max, then back up (period 2·t_max).
struct cosine_annealing_lr {
  double base_lr = 1e-3;
  std::int64_t t_max = 100;
  double eta_min = 0;

  [[nodiscard]] double operator()(std::int64_t epoch) const {
    schedule_detail::check_index(epoch, "cosine_annealing_lr");
    schedule_detail::check(t_max > 0, "cosine_annealing_lr", "t_max must be > 0");
    return eta_min + (base_lr - eta_min) * (1 + std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(t_max))) / 2;
  }
};

// OneCycleLR with cosine annealing, for total_steps optimizer steps (index = steps taken so far):
//   initial = max_lr / div_factor,  final = initial / final_div_factor
//   two phases:   [0, pct_start·T − 1]              initial → max_lr
//                 [.., T − 1]                       max_lr → final
//   three phases: [0, pct_start·T − 1]              initial → max_lr
//                 [.., 2·pct_start·T − 2]           max_lr → initial
//                 [.., T − 1]                       initial → final
// momentum(step) runs the other way (max_momentum ↔ base_momentum); apply it with set_momentum
// (β1 for Adam) to do what PyTorch does with cycle_momentum = true.
struct one_cycle_lr {
  double max_lr = 1e-3;
  std::int64_t total_steps = 1000;
  double pct_start = 0.3;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool three_phase = false;
  double base_momentum = 0.85;
  double max_momentum = 0.95;

  [[nodiscard]] double initial_lr() const { return max_lr / div_factor; }
  [[nodiscard]] double final_lr() const { return initial_lr() / final_div_factor; }

  [[nodiscard]] double operator()(std::int64_t step) const {
    const phase_point p = locate(step);
    return schedule_detail::cosine_between(p.start_lr, p.end_lr, p.pct);
  }
  [[nodiscard]] double momentum(std::int64_t step) const {
    const phase_point p = locate(step);
    return schedule_detail::cosine_between(p.start_momentum, p.end_momentum, p.pct);
  }

 private:
  struct phase_point {
    double start_lr, end_lr, start_momentum, end_momentum, pct;
  };
  struct phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };

  [[nodiscard]] phase_point locate(std::int64_t step) const {
    constexpr std::string_view who = "one_cycle_lr";
    schedule_detail::check_index(step, who);
    schedule_detail::check(total_steps > 0, who, "total_steps must be > 0");
    schedule_detail::check(pct_start >= 0 && pct_start <= 1, who, "pct_start must be in [0, 1]");
    schedule_detail::check(div_factor > 0 && final_div_factor > 0, who, "div_factor and final_div_factor must be > 0");
    // PyTorch allows the index to reach total_steps (one step past the last) and fails after.
    require(step <= total_steps, who,
            "step " + std::to_string(step) + " is past the schedule's total_steps " + std::to_string(total_steps));
    const double t = static_cast<double>(total_steps);
    const double lo = initial_lr(), hi = max_lr, end = final_lr();
    phase phases[3];
    int count = 0;
    if (three_phase) {
      phases[count++] = {pct_start * t - 1, lo, hi, max_momentum, base_momentum};
      phases[count++] = {2 * pct_start * t - 2, hi, lo, base_momentum, max_momentum};
      phases[count++] = {t - 1, lo, end, max_momentum, max_momentum};
    } else {
      phases[count++] = {pct_start * t - 1, lo, hi, max_momentum, base_momentum};
      phases[count++] = {t - 1, hi, end, base_momentum, max_momentum};
    }
    const double s = static_cast<double>(step);
    double start = 0;
    for (int i = 0; i < count; ++i) {
      const phase& ph = phases[i];
      if (s <= ph.end_step || i == count - 1) {
        // A phase of zero length (tiny total_steps) is reached at its end.
        const double pct = ph.end_step > start ? (s - start) / (ph.end_step - start) : 1.0;
        return {ph.start_lr, ph.end_lr, ph.start_momentum, ph.end_momentum, pct};
      }
      start = ph.end_step;
    }
    return {lo, lo, max_momentum, max_momentum, 0};  // not reached
  }
};

// ReduceLROnPlateau. Call step(metric) once per epoch; it returns the learning rate to use next.
// An improvement is  metric < best·(1 − threshold) (min, rel), metric < best − threshold (min, abs),
// metric > best·(1 + threshold) (max, rel) or metric > best + threshold (max, abs). After more than
// `patience` epochs without one, lr ← max(lr·factor, min_lr) (changes smaller than 1e-8 are skipped),
// then `cooldown` epochs pass during which bad epochs are not counted. NaN never improves.
enum class plateau_mode { min, max };
enum class plateau_threshold { rel, abs };
struct plateau_options {
  plateau_mode direction = plateau_mode::min;
  double factor = 0.1;
  std::int64_t patience = 10;
  double threshold = 1e-4;
  plateau_threshold threshold_kind = plateau_threshold::rel;
  std::int64_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

class reduce_lr_on_plateau {
 public:
  using mode = plateau_mode;
  using threshold_mode = plateau_threshold;
  using options = plateau_options;

  explicit reduce_lr_on_plateau(double initial_lr, options o = {}) : options_(o), lr_(initial_lr) {
    constexpr std::string_view who = "reduce_lr_on_plateau";
    schedule_detail::check(o.factor >= 0 && o.factor < 1, who, "factor must be in [0, 1)");
    schedule_detail::check(o.patience >= 0 && o.cooldown >= 0, who, "patience and cooldown must be ≥ 0");
    schedule_detail::check(o.threshold >= 0 && o.min_lr >= 0 && o.eps >= 0, who, "threshold, min_lr and eps must be ≥ 0");
    schedule_detail::check(initial_lr >= 0 && std::isfinite(initial_lr), who, "the initial learning rate must be finite and ≥ 0");
    best_ = worst();
  }

  // Records one epoch's metric; returns the learning rate for the next epoch.
  double step(double metric) {
    ++epochs_;
    if (improves(metric)) {
      best_ = metric;
      bad_epochs_ = 0;
    } else {
      ++bad_epochs_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_epochs_ = 0;
    }
    if (bad_epochs_ > options_.patience) {
      const double reduced = std::max(lr_ * options_.factor, options_.min_lr);
      if (lr_ - reduced > options_.eps) lr_ = reduced;
      cooldown_left_ = options_.cooldown;
      bad_epochs_ = 0;
    }
    return lr_;
  }

  [[nodiscard]] double learning_rate() const { return lr_; }
  [[nodiscard]] double best() const { return best_; }
  [[nodiscard]] std::int64_t bad_epochs() const { return bad_epochs_; }
  [[nodiscard]] std::int64_t epochs() const { return epochs_; }
  [[nodiscard]] bool in_cooldown() const { return cooldown_left_ > 0; }
  [[nodiscard]] const options& settings() const { return options_; }

  // Checkpoint state: lr, best (double); epochs, bad_epochs, cooldown_left (std::int64_t).
  template <class F>
  void for_each_state(F&& f) {
    f(std::string_view("lr"), lr_);
    f(std::string_view("best"), best_);
    f(std::string_view("epochs"), epochs_);
    f(std::string_view("bad_epochs"), bad_epochs_);
    f(std::string_view("cooldown_left"), cooldown_left_);
  }

 private:
  [[nodiscard]] double worst() const {
    return options_.direction == mode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  }
  [[nodiscard]] bool improves(double a) const {
    const bool rel = options_.threshold_kind == threshold_mode::rel;
    if (options_.direction == mode::min) return rel ? a < best_ * (1 - options_.threshold) : a < best_ - options_.threshold;
    return rel ? a > best_ * (1 + options_.threshold) : a > best_ + options_.threshold;
  }

  options options_;
  double lr_;
  double best_ = 0;
  std::int64_t epochs_ = 0, bad_epochs_ = 0, cooldown_left_ = 0;
};

}  // namespace microcount::nn
