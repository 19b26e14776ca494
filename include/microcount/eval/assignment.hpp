#pragma once
// Optimal one-to-one assignment on a rectangular cost matrix (the linear sum assignment problem).
//
// solve_assignment(rows, cols, cost_of) returns, for every row, the column it is assigned to, such that
// min(rows, cols) pairs are formed and the summed cost is minimal. The solver is the shortest augmenting
// path form of the Hungarian method with row and column potentials (Kuhn–Munkres as refined by
// Jonker & Volgenant): one augmentation per row of the smaller side, each a Dijkstra-like scan over
// the columns on reduced costs, so O(n² m) time for n = min(rows, cols), m = max(rows, cols), and
// O(n + m) memory besides the costs (they are asked for on the fly, never stored).
//
// The cost type is a template parameter: any totally ordered additive group works (the algorithm only
// adds, subtracts and compares). matching.hpp uses that to minimise a lexicographic cost
// (forbidden pairs first, distance second) exactly, with no "large constant" to tune.
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "microcount/core/error.hpp"

namespace microcount::eval {

// What the solver needs of a cost: zero, a value larger than every finite cost, + − and <.
template <class Cost>
struct cost_traits {
  static_assert(std::is_floating_point_v<Cost>,
                "cost_traits<Cost>: specialise it (zero, unreachable) for a non-floating cost type");
  static constexpr Cost zero() { return Cost{0}; }
  static constexpr Cost unreachable() { return std::numeric_limits<Cost>::infinity(); }
};

template <class Cost>
concept assignment_cost = std::copyable<Cost> && std::totally_ordered<Cost> && requires(Cost a, Cost b) {
  { a + b } -> std::convertible_to<Cost>;
  { a - b } -> std::convertible_to<Cost>;
  { cost_traits<Cost>::zero() } -> std::convertible_to<Cost>;
  { cost_traits<Cost>::unreachable() } -> std::convertible_to<Cost>;
};

// cost_of(row, col) -> Cost, for row < rows and col < cols.
template <class F, class Cost>
concept cost_function = std::invocable<const F&, std::size_t, std::size_t> &&
                        std::convertible_to<std::invoke_result_t<const F&, std::size_t, std::size_t>, Cost>;

// Marks a row (or column) left without a partner when the matrix is not square.
inline constexpr std::ptrdiff_t unassigned = -1;

namespace detail {

// Every one of the n ≤ m rows gets a column. Returns column_of_row (size n).
// Index 0 of the column arrays is a virtual column that holds the row being inserted, so the arrays are
// 1-based for real columns; rows are 1-based likewise (row 0 = none).
template <class Cost, class CostOf>
std::vector<std::ptrdiff_t> assign_every_row(std::size_t n, std::size_t m, const CostOf& cost_of) {
  using traits = cost_traits<Cost>;
  const Cost unreachable = traits::unreachable();
  std::vector<Cost> row_potential(n + 1, traits::zero());     // [n + 1]
  std::vector<Cost> column_potential(m + 1, traits::zero());  // [m + 1]
  std::vector<std::size_t> row_of_column(m + 1, 0);           // [m + 1], 0 = free
  std::vector<std::size_t> previous_column(m + 1, 0);         // [m + 1], the alternating path back
  std::vector<Cost> slack(m + 1, unreachable);                // [m + 1], shortest reduced distance so far
  std::vector<char> visited(m + 1, 0);                        // [m + 1]

  for (std::size_t row = 1; row <= n; ++row) {
    // Grow a shortest-path tree from `row` until it reaches a free column, then flip the path.
    row_of_column[0] = row;
    std::size_t column = 0;
    std::fill(slack.begin(), slack.end(), unreachable);
    std::fill(visited.begin(), visited.end(), 0);
    do {
      visited[column] = 1;
      const std::size_t from_row = row_of_column[column];
      Cost step = unreachable;
      std::size_t next_column = 0;
      for (std::size_t j = 1; j <= m; ++j) {
        if (visited[j]) continue;
        const Cost reduced = Cost(cost_of(from_row - 1, j - 1)) - row_potential[from_row] - column_potential[j];
        if (reduced < slack[j]) {
          slack[j] = reduced;
          previous_column[j] = column;
        }
        if (slack[j] < step) {
          step = slack[j];
          next_column = j;
        }
      }
      // Shift potentials so the tree's edges stay tight and the closest column joins the tree.
      for (std::size_t j = 0; j <= m; ++j) {
        if (visited[j]) {
          row_potential[row_of_column[j]] = row_potential[row_of_column[j]] + step;
          column_potential[j] = column_potential[j] - step;
        } else {
          slack[j] = slack[j] - step;
        }
      }
      column = next_column;
    } while (row_of_column[column] != 0);
    // Augment: walk back along the path, moving every row one column over.
    while (column != 0) {
      const std::size_t back = previous_column[column];
      row_of_column[column] = row_of_column[back];
      column = back;
    }
  }

  std::vector<std::ptrdiff_t> column_of_row(n, unassigned);
  for (std::size_t j = 1; j <= m; ++j)
    if (row_of_column[j] != 0) column_of_row[row_of_column[j] - 1] = static_cast<std::ptrdiff_t>(j - 1);
  return column_of_row;
}

}  // namespace detail

// Minimum-cost assignment. Result[row] = column, or `unassigned` when rows > cols and the row is left over.
// Exactly min(rows, cols) pairs are formed. Ties are broken deterministically (same input, same answer).
template <class Cost = double, class CostOf>
std::vector<std::ptrdiff_t> solve_assignment(std::size_t rows, std::size_t cols, const CostOf& cost_of) {
  static_assert(assignment_cost<Cost>, "solve_assignment: Cost must be ordered with + and - (see cost_traits)");
  static_assert(cost_function<CostOf, Cost>, "solve_assignment: cost_of(row, col) must return a Cost");
  if (rows == 0 || cols == 0) return std::vector<std::ptrdiff_t>(rows, unassigned);
  if (rows <= cols) return detail::assign_every_row<Cost>(rows, cols, cost_of);
  // More rows than columns: solve the transposed problem, then invert it.
  const auto transposed = [&](std::size_t r, std::size_t c) { return cost_of(c, r); };
  const auto row_of_col = detail::assign_every_row<Cost>(cols, rows, transposed);
  std::vector<std::ptrdiff_t> column_of_row(rows, unassigned);
  for (std::size_t c = 0; c < cols; ++c) column_of_row[row_of_col[c]] = static_cast<std::ptrdiff_t>(c);
  return column_of_row;
}

// The same on a dense matrix (rows × cols); every entry must be finite.
inline std::vector<std::ptrdiff_t> solve_assignment(const Eigen::MatrixXd& cost) {
  if (!cost.allFinite()) throw error("assignment", "the cost matrix holds a NaN or infinite entry");
  return solve_assignment<double>(static_cast<std::size_t>(cost.rows()), static_cast<std::size_t>(cost.cols()),
                                  [&](std::size_t r, std::size_t c) {
                                    return cost(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c));
                                  });
}

// Summed cost of an assignment (pairs with a column only).
template <class Cost = double, class CostOf>
Cost assignment_cost_of(const std::vector<std::ptrdiff_t>& column_of_row, const CostOf& cost_of) {
  Cost total = cost_traits<Cost>::zero();
  for (std::size_t r = 0; r < column_of_row.size(); ++r)
    if (column_of_row[r] != unassigned) total = total + Cost(cost_of(r, static_cast<std::size_t>(column_of_row[r])));
  return total;
}

}  // namespace microcount::eval
