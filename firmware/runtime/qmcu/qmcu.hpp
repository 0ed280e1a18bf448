// The int8 runtime, header-only: include this one file.
#pragma once

#include "config.hpp"
#include "fixedpoint.hpp"
#include "qactivations.hpp"
#include "qaffine.hpp"
#include "qcalibration.hpp"
#include "qdense.hpp"
// The convolution kernel family (issue 13): templates and inline functions only, so an image that does not
// call them is unchanged.
#include "kernels/add.hpp"
#include "kernels/conv.hpp"
#include "kernels/depthwise.hpp"
#include "kernels/pointwise.hpp"
#include "kernels/pool.hpp"
