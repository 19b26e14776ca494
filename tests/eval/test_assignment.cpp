// The assignment solver against exhaustive search over all injections of the smaller side.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "microcount/core/rng.hpp"
#include "microcount/eval/assignment.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

// Smallest total over all ways to give each row of the smaller side a distinct column (brute force).
double brute_force_minimum(const Eigen::MatrixXd& cost) {
  const bool transpose = cost.rows() > cost.cols();
  const Eigen::MatrixXd c = transpose ? Eigen::MatrixXd(cost.transpose()) : cost;  // [n ≤ m]
  const auto n = c.rows(), m = c.cols();
  std::vector<int> columns(static_cast<std::size_t>(m));
  std::iota(columns.begin(), columns.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  do {  // every permutation of the columns; its first n entries are an injection (repeats are harmless)
    double total = 0;
    for (Eigen::Index r = 0; r < n; ++r) total += c(r, columns[static_cast<std::size_t>(r)]);
    best = std::min(best, total);
  } while (std::next_permutation(columns.begin(), columns.end()));
  return n == 0 ? 0.0 : best;
}

// The assignment is a valid one-to-one map of min(rows, cols) pairs; returns its cost.
double checked_cost(const Eigen::MatrixXd& cost, const std::vector<std::ptrdiff_t>& column_of_row) {
  REQUIRE(column_of_row.size() == static_cast<std::size_t>(cost.rows()));
  std::vector<int> used(static_cast<std::size_t>(cost.cols()), 0);
  std::size_t pairs = 0;
  double total = 0;
  for (std::size_t r = 0; r < column_of_row.size(); ++r) {
    const auto c = column_of_row[r];
    if (c == eval::unassigned) continue;
    REQUIRE(c >= 0);
    REQUIRE(c < cost.cols());
    CHECK(++used[static_cast<std::size_t>(c)] == 1);
    ++pairs;
    total += cost(static_cast<Eigen::Index>(r), c);
  }
  CHECK(pairs == static_cast<std::size_t>(std::min(cost.rows(), cost.cols())));
  return total;
}

}  // namespace

TEST_CASE("assignment: optimal on random rectangular instances (vs all permutations)") {
  rng r(2024);
  int instances = 0;
  for (int rows = 0; rows <= 6; ++rows)
    for (int cols = 0; cols <= 6; ++cols)
      for (int trial = 0; trial < 12; ++trial) {
        Eigen::MatrixXd cost(rows, cols);  // [rows, cols]
        const bool ties = trial % 3 == 0;  // small integers: many optimal assignments
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j)
            cost(i, j) = ties ? static_cast<double>(r.below(3)) : r.uniform(-5.0, 10.0);
        const auto result = eval::solve_assignment(cost);
        CHECK(checked_cost(cost, result) == doctest::Approx(brute_force_minimum(cost)).epsilon(1e-12));
        ++instances;
      }
  CHECK(instances == 7 * 7 * 12);
}

TEST_CASE("assignment: known small answers, determinism, bad input") {
  Eigen::MatrixXd c(3, 3);
  c << 4, 1, 3,
       2, 0, 5,
       3, 2, 2;
  const auto a = eval::solve_assignment(c);  // optimum 1 + 2 + 2 = 5: rows → columns 1, 0, 2
  CHECK(a == std::vector<std::ptrdiff_t>{1, 0, 2});
  CHECK(eval::solve_assignment(c) == a);

  Eigen::MatrixXd tall(3, 1);  // more rows than columns: only the cheapest row gets the column
  tall << 5, 1, 3;
  CHECK(eval::solve_assignment(tall) == std::vector<std::ptrdiff_t>{eval::unassigned, 0, eval::unassigned});

  Eigen::MatrixXd bad(2, 2);
  bad << 1, std::nan(""), 0, 1;
  CHECK_THROWS_WITH_AS(eval::solve_assignment(bad), doctest::Contains("NaN"), microcount::error);

  // The callback form with an integer-valued cost given as double, and the cost helper.
  const auto cost_of = [](std::size_t r, std::size_t col) { return static_cast<double>((r + 2 * col) % 3); };
  const auto s = eval::solve_assignment<double>(4, 4, cost_of);
  CHECK(eval::assignment_cost_of<double>(s, cost_of) == 0.0);
}
