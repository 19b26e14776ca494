#pragma once
// A detection: an annotation point (x = column, y = row, label, frame) and the score it was found with
// (the map value at a peak, a cluster's population, a detector's confidence …).
#include "microcount/io/annotations.hpp"

namespace microcount::post {

struct scored_point {
  io::point point;
  float score = 0;
};

}  // namespace microcount::post
