#pragma once
// The reference backend: every op as plain scalar loops (the oracle). Include to use backend::reference.
#include "microcount/backends/reference/conv.hpp"
#include "microcount/backends/reference/launch.hpp"
#include "microcount/backends/reference/activation.hpp"
#include "microcount/backends/reference/misc.hpp"
#include "microcount/backends/reference/norm.hpp"
#include "microcount/backends/reference/pool.hpp"
#include "microcount/backends/reference/resample.hpp"
#include "microcount/backends/reference/loss.hpp"
