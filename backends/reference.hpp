#pragma once
// The reference backend: every op as plain scalar loops (the oracle). Include to use backend::reference.
#include "microcount/backends/reference/conv.hpp"
#include "microcount/backends/reference/launch.hpp"
