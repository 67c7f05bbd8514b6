// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/zss.hpp
 * Umbrella header: everything in zss. Prefer the individual headers in library code.
 */
#include "zss/version.hpp"

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/random.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

#include "zss/loss/softmax.hpp"
#include "zss/nn/normalize.hpp"
