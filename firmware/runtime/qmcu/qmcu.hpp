// The int8 runtime, header-only: include this one file.
#pragma once

#include "config.hpp"
#include "fixedpoint.hpp"
#include "qactivations.hpp"
#include "qaffine.hpp"
#include "qcalibration.hpp"
#include "qdense.hpp"
