// SPDX-License-Identifier: Apache-2.0
// Tests for zss/eval/predict.hpp: the student's labels against a direct reference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "zss/core/random.hpp"
#include "zss/eval/predict.hpp"
#include "zss/nn/encoder.hpp"

namespace test_eval_predict {

using namespace zss;
using namespace zss::eval;

namespace {

template <class T>
tensor<T, 2> random_matrix(index_t r, index_t c, std::uint64_t seed) {
  rng g(seed, 7);
  tensor<T, 2> m = tensor<T, 2>::from_shape({r, c});
  for (auto& v : m) v = g.normal<T>();
  return m;
}

}  // namespace

TEST_CASE(
    "predict: argmax of calibrated cosine scores (stride-1 net: upsampling is the identity)") {
  encoder_options ec;
  ec.widths = {4};
  ec.strides = {1};
  ec.embed_dim = 5;
  encoder<double> net(ec);
  encoder_init(net, 3);
  for (auto id : net.bias_id)  // non-zero biases: no all-zero feature rows
    for (index_t i = 0; i < net.params.entries()[id].size; ++i)
      net.params.value(id)[i] = 0.1 * double(i % 3) - 0.05;
  const index_t B = 2, H = 5, W = 6, K = 4;
  tensor<double, 4> images = tensor<double, 4>::from_shape({B, H, W, 3});
  rng g(4, 0);
  for (auto& v : images) v = g.uniform<double>(-1, 1);
  const auto text = random_matrix<double>(K, 5, 9);
  const std::vector<std::int32_t> ids = {10, 11, 12, 13};
  const bool seen_flags[K] = {true, false, true, false};
  for (double gamma : {0.0, 0.3}) {
    tensor<std::int32_t, 3> labels = tensor<std::int32_t, 3>::from_shape({B, H, W});
    predict_cache<double> cache;
    predict_options ip;
    ip.calibration = gamma;
    predict(labels, cache, images, net, text, std::span<const std::int32_t>(ids),
            std::span<const bool>(seen_flags, K), ip);
    tensor<double, 3> feats = tensor<double, 3>::from_shape({B, H * W, 5});
    encoder_cache<double> ecache;
    encoder_forward(feats, ecache, images, net, 1);
    for (index_t b = 0; b < B; ++b)
      for (index_t p = 0; p < H * W; ++p) {
        double best = -1e300;
        std::int32_t arg = -1;
        double fn = 0;
        for (index_t d = 0; d < 5; ++d) fn += feats(b, p, d) * feats(b, p, d);
        for (index_t k = 0; k < K; ++k) {
          double dot = 0, tn = 0;
          for (index_t d = 0; d < 5; ++d)
            dot += feats(b, p, d) * text(k, d), tn += text(k, d) * text(k, d);
          const double s = dot / std::sqrt(fn * tn) - (seen_flags[k] ? gamma : 0.0);
          if (s > best) best = s, arg = ids[k];
        }
        CHECK(labels(b, p / W, p % W) == arg);
      }
  }
}

}  // namespace test_eval_predict
