#pragma once
// One detected or annotated object of a movie (2D+t): what the event pipeline produces (post/events.hpp),
// what evaluation matches (eval/events.hpp) and what ExoDeepFinder object lists hold (io/objlist.hpp).
// Coordinates are in pixels and frames of the movie grid: x = column, y = row, frame = time index
// (ExoDeepFinder's z). `label` is the ExoDeepFinder class number: 1 = bright spot, 2 = event.
#include <cstddef>

namespace microcount::post {

struct event_object {
  int label = 2;             // ExoDeepFinder class_label: 1 = bright spot, 2 = event
  double frame = 0;          // centroid, time index (fractional for a cluster's mean)
  double y = 0;              // centroid, row
  double x = 0;              // centroid, column
  std::size_t size = 0;      // voxels in the cluster (cluster_size); 0 for an annotation
};

}  // namespace microcount::post
