// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/encoder.hpp (and zss/nn/init.hpp): architecture, forward against the composed
// direct reference, end-to-end gradient, threads, and a tiny overfitting run with cosine CE.
#include <doctest/doctest.h>

#include <cmath>

#include "support/conv_reference.hpp"
#include "support/cosine_ce.hpp"
#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/optim/adamw.hpp"

namespace test_nn_encoder {

using namespace zss;

namespace {
encoder_options tiny_config() {
  encoder_options c;
  c.in_channels = 3;
  c.widths = {4, 6};
  c.strides = {1, 2};
  c.embed_dim = 5;
  return c;
}

// Widths 8, 8, 8 with strides 1, 1, 2: the second layer (8 → 8, stride 1) is Winograd-eligible.
void with_winograd_layer(encoder_options& c) {
  c.widths = {8, 8, 8};
  c.strides = {1, 1, 2};
}

template <class T>
tensor<T, 4> random_images(index_t B, index_t H, index_t W, index_t C, std::uint64_t seed) {
  tensor<T, 4> t = tensor<T, 4>::from_shape({B, H, W, C});
  auto v = test::uniform_vector<T>(t.size(), seed);
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

// The composed direct reference: conv (direct loops) + ReLU per layer, 1x1 projection last.
template <class T>
std::vector<double> reference_features(const encoder<T>& net, const T* image, index_t H,
                                       index_t W) {
  std::vector<double> cur(image, image + H * W * net.config.in_channels);
  index_t h = H, w = W;
  for (index_t l = 0; l < net.layers(); ++l) {
    const auto g = net.geometry(l, H, W);
    const bool last = l + 1 == net.layers();
    std::vector<double> wd(net.params.value(net.weight_id[l]),
                           net.params.value(net.weight_id[l]) + g.patch() * net.out_channels(l));
    std::vector<double> bd(net.params.value(net.bias_id[l]),
                           net.params.value(net.bias_id[l]) + net.out_channels(l));
    index_t oh = 0, ow = 0;
    cur = test::conv2d_direct(cur.data(), h, w, g.in_c, wd.data(), bd.data(), net.out_channels(l),
                              g.kernel_h, g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, oh,
                              ow);
    if (!last && net.config.norm_groups > 0) {  // GroupNorm, two-pass, in double
      const index_t C = net.out_channels(l), G = net.config.norm_groups, cg = C / G, P = oh * ow;
      std::vector<double> gm(net.params.value(net.norm_weight_id[l]),
                             net.params.value(net.norm_weight_id[l]) + C);
      std::vector<double> bt(net.params.value(net.norm_bias_id[l]),
                             net.params.value(net.norm_bias_id[l]) + C);
      for (index_t gi = 0; gi < G; ++gi) {
        double mu = 0, var = 0;
        for (index_t p = 0; p < P; ++p)
          for (index_t c = gi * cg; c < (gi + 1) * cg; ++c) mu += cur[p * C + c];
        mu /= double(P * cg);
        for (index_t p = 0; p < P; ++p)
          for (index_t c = gi * cg; c < (gi + 1) * cg; ++c)
            var += (cur[p * C + c] - mu) * (cur[p * C + c] - mu);
        var /= double(P * cg);
        for (index_t p = 0; p < P; ++p)
          for (index_t c = gi * cg; c < (gi + 1) * cg; ++c)
            cur[p * C + c] = (cur[p * C + c] - mu) / std::sqrt(var + 1e-5) * gm[c] + bt[c];
      }
    }
    if (!last)
      for (auto& v : cur) v = std::max(v, 0.0);
    h = oh, w = ow;
  }
  return cur;
}
}  // namespace

TEST_CASE("the default net is DESIGN §3's: names, shapes, 286,016 parameters, output stride 4") {
  encoder<float> net;
  CHECK(net.params.parameter_count() ==
        286016);  // PyTorch's count for the same net (peer_encoder.py)
  CHECK(net.layers() == 6);
  CHECK(net.config.output_stride() == 4);
  const auto& e = net.params.entries();
  CHECK(e[0].name == "conv1.weight");
  CHECK(e[0].shape == std::vector<index_t>{3, 3, 3, 32});
  CHECK(e[7].name == "conv4.bias");
  CHECK(e[10].name == "proj.weight");
  CHECK(e[10].shape == std::vector<index_t>{1, 1, 128, 64});
  CHECK(net.output_grid(64, 64) == std::array<index_t, 2>{16, 16});
  CHECK(net.output_grid(63, 33) == std::array<index_t, 2>{16, 9});  // ceil(63/4), ceil(33/4)
  CHECK(net.forward_flops(64, 64) * 16 ==
        doctest::Approx(3.80e9).epsilon(0.01));  // PERFORMANCE §3.2
}

TEST_CASE("He init: zero biases, weight std sqrt(2/fan_in), reproducible from the seed") {
  encoder<double> a, b;
  encoder_init(a, 42);
  encoder_init(b, 42);
  CHECK(std::equal(a.params.values(), a.params.values() + a.params.size(), b.params.values()));
  for (index_t l = 0; l < a.layers(); ++l) {
    const auto& e = a.params.entries()[a.weight_id[l]];
    const double* w = a.params.value(a.weight_id[l]);
    double s2 = 0;
    for (index_t i = 0; i < e.size; ++i) s2 += w[i] * w[i];
    const double fan_in = double(e.shape[0] * e.shape[1] * e.shape[2]);
    CAPTURE(l);
    // Sample variance of n ≥ 864 normals: relative sd sqrt(2/n) ≤ 5 %; allow 4 sd.
    CHECK(s2 / double(e.size) ==
          doctest::Approx(2.0 / fan_in).epsilon(4 * std::sqrt(2.0 / double(e.size))));
    const double* bias = a.params.value(a.bias_id[l]);
    for (index_t i = 0; i < a.out_channels(l); ++i) CHECK(bias[i] == 0.0);
  }
  encoder<double> c;
  encoder_init(c, 43);
  CHECK(c.params.values()[0] != a.params.values()[0]);
}

TEST_CASE_TEMPLATE(
    "forward equals the composed direct reference, bitwise the same for 1 and 2 threads", T, float,
    double) {
  auto cfg = tiny_config();
  bool winograd = false;  // the cache's choice: both forms of a Winograd-eligible layer
  SUBCASE("DESIGN §3 net (no normalisation)") {}
  SUBCASE("with GroupNorm (2 groups)") {
    cfg.norm_groups = 2;
  }
  SUBCASE("a stride-1 8 → 8 layer by Winograd") {
    with_winograd_layer(cfg);
    winograd = true;
  }
  SUBCASE("the same layer in the direct form") {
    with_winograd_layer(cfg);
  }
  SUBCASE("a Winograd layer and GroupNorm") {
    with_winograd_layer(cfg);
    cfg.norm_groups = 2;
    winograd = true;
  }
  encoder<T> net(cfg);
  encoder_init(net, 7);
  for (index_t l = 0; l < net.norm_weight_id.size(); ++l)
    for (index_t i = 0; i < net.out_channels(l); ++i) {
      net.params.value(net.norm_weight_id[l])[i] = T(1) + T(0.1) * T(i);
      net.params.value(net.norm_bias_id[l])[i] = T(0.05) * T(i);
    }
  // Non-zero biases so the bias path is tested too.
  for (index_t l = 0; l < net.layers(); ++l)
    for (index_t i = 0; i < net.out_channels(l); ++i)
      net.params.value(net.bias_id[l])[i] = T(0.05) * T(i + 1) - T(0.1);
  for (auto [H, W] : {std::pair<index_t, index_t>{7, 6}, {8, 8}, {5, 9}}) {
    auto img = random_images<T>(3, H, W, 3, H * 10 + W);
    const auto [h, w] = net.output_grid(H, W);
    tensor<T, 3> f1 = tensor<T, 3>::from_shape({3, h * w, 5}), f2 = f1;
    encoder_cache<T> c1, c2;
    c1.winograd = c2.winograd = winograd;
    encoder_forward(f1, c1, img, net, 1);
    encoder_forward(f2, c2, img, net, 2);
    CHECK(f1 == f2);
    CHECK(c1.uses_winograd(net, 1) == winograd);
    for (index_t b = 0; b < 3; ++b) {
      auto ref = reference_features(net, img.data() + b * H * W * 3, H, W);
      REQUIRE(ref.size() == h * w * 5);
      double scale = 0;
      for (double r : ref) scale = std::max(scale, std::abs(r));
      const double tol = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * (1 + scale);
      for (index_t i = 0; i < ref.size(); ++i)
        CHECK(std::abs(double(f1.data()[b * ref.size() + i]) - ref[i]) <= tol);
    }
  }
}

TEST_CASE("end-to-end gradient of every parameter equals finite differences (double)") {
  auto cfg = tiny_config();
  bool winograd = false;
  SUBCASE("DESIGN §3 net (no normalisation)") {}
  SUBCASE("with GroupNorm (2 groups)") {
    cfg.norm_groups = 2;
  }
  SUBCASE("a stride-1 8 → 8 layer by Winograd (forward and input gradient)") {
    with_winograd_layer(cfg);
    winograd = true;
  }
  SUBCASE("a Winograd layer and GroupNorm") {
    with_winograd_layer(cfg);
    cfg.norm_groups = 2;
    winograd = true;
  }
  encoder<double> net(cfg);
  encoder_init(net, 3);
  for (index_t l = 0; l < net.norm_weight_id.size(); ++l)
    for (index_t i = 0; i < net.out_channels(l); ++i) {
      net.params.value(net.norm_weight_id[l])[i] = 0.8 + 0.1 * double(i);
      net.params.value(net.norm_bias_id[l])[i] = 0.03 * double(i) - 0.05;
    }
  for (index_t l = 0; l < net.layers(); ++l)
    for (index_t i = 0; i < net.out_channels(l); ++i)
      net.params.value(net.bias_id[l])[i] = 0.02 * double(i) - 0.03;
  const index_t B = 2, H = 7, W = 6;
  auto img = random_images<double>(B, H, W, 3, 99);
  const auto [h, w] = net.output_grid(H, W);
  const index_t P = h * w, D = 5, K = 4;
  auto cls = test::uniform_vector<double>(K * D, 5);
  std::vector<double> Wc(cls.begin(), cls.end());
  std::vector<std::int32_t> y(B * P);
  rng g(17);
  for (auto& v : y) v = std::int32_t(g.below(K + 1)) - 1;  // some ignored (−1)
  encoder_cache<double> cache;
  cache.tile_bytes = 2048;  // several im2col tiles per image in every k×k layer
  cache.winograd = winograd;
  tensor<double, 3> F = tensor<double, 3>::from_shape({B, P, D}), dF = F;
  auto loss = [&] {
    encoder_forward(F, cache, img, net, 1);
    return test::cosine_ce(F.data(), B * P, D, Wc, K, y, 5.0, static_cast<double*>(nullptr));
  };
  loss();
  test::cosine_ce(F.data(), B * P, D, Wc, K, y, 5.0, dF.data());
  // The support loss's own gradient first (it is the upstream of the encoder's).
  auto gF = test::numeric_gradient(
      [&] {
        return test::cosine_ce(F.data(), B * P, D, Wc, K, y, 5.0, static_cast<double*>(nullptr));
      },
      F.data(), F.size());
  CHECK(test::relative_error(dF, gF) < 1e-6);
  for (int threads : {1, 2}) {
    net.params.zero_grad();
    loss();
    CHECK(cache.uses_winograd(net, 1) == winograd);
    encoder_backward(net, dF, cache, img, threads);
    auto num = test::numeric_gradient(loss, net.params.values(), net.params.size());
    for (const auto& e : net.params.entries()) {
      CAPTURE(e.name);
      CAPTURE(threads);
      std::vector<double> a(net.params.grads() + e.offset, net.params.grads() + e.offset + e.size);
      std::vector<double> n(num.begin() + long(e.offset), num.begin() + long(e.offset + e.size));
      CHECK(test::relative_error(a, n) < 1e-6);
    }
  }
  // Adds into the gradients.
  std::vector<double> once(net.params.grads(), net.params.grads() + net.params.size());
  encoder_backward(net, dF, cache, img, 2);
  for (index_t i = 0; i < once.size(); ++i)
    CHECK(net.params.grads()[i] == doctest::Approx(2 * once[i]));
}

TEST_CASE_TEMPLATE(
    "parameter gradients: bitwise reproducible for a fixed thread count, equal up to rounding "
    "across counts",
    T, float, double) {
  encoder<T> net(tiny_config());
  encoder_init(net, 21);
  const index_t B = 5, H = 9, W = 8;
  auto img = random_images<T>(B, H, W, 3, 22);
  const auto [h, w] = net.output_grid(H, W);
  tensor<T, 3> F = tensor<T, 3>::from_shape({B, h * w, 5});
  auto r = test::uniform_vector<T>(F.size(), 23);
  tensor<T, 3> dF = tensor<T, 3>::from_shape(F.shape());
  std::copy(r.begin(), r.end(), dF.begin());
  auto grads = [&](int threads) {
    encoder_cache<T> cache;
    net.params.zero_grad();
    encoder_forward(F, cache, img, net, threads);
    encoder_backward(net, dF, cache, img, threads);
    return std::vector<T>(net.params.grads(), net.params.grads() + net.params.size());
  };
  const auto g1 = grads(1), g2 = grads(2), g2b = grads(2);
  CHECK(g2 == g2b);
  CHECK(test::relative_error(g1, g2) < (std::is_same_v<T, float> ? 1e-6 : 1e-14));
}

TEST_CASE("shape errors name the shapes") {
  encoder<float> net(tiny_config());
  encoder_cache<float> cache;
  tensor<float, 4> img = xt::zeros<float>({2, 8, 8, 4});
  tensor<float, 3> F = xt::zeros<float>({2, 16, 5});
  CHECK_THROWS_WITH_AS(encoder_forward(F, cache, img, net),
                       doctest::Contains("images.shape[3] (channels) (4)"), std::invalid_argument);
  tensor<float, 4> ok = xt::zeros<float>({2, 8, 8, 3});
  tensor<float, 3> bad = xt::zeros<float>({2, 15, 5});
  CHECK_THROWS_WITH_AS(encoder_forward(bad, cache, ok, net),
                       doctest::Contains("features has shape (2, 15, 5), expected (2, 16, 5)"),
                       std::invalid_argument);
  encoder_forward(F, cache, ok, net);
  tensor<float, 4> other = xt::zeros<float>({2, 6, 8, 3});
  CHECK_THROWS_WITH_AS(encoder_backward(net, F, cache, other), doctest::Contains("(2, 6, 8, 3)"),
                       std::invalid_argument);
  encoder_options c = tiny_config();
  c.strides = {1};
  CHECK_THROWS_WITH_AS(encoder<float>{c}, doctest::Contains("2 widths but 1 strides"),
                       std::invalid_argument);
}

TEST_CASE_TEMPLATE(
    "overfitting: encoder + cosine CE + AdamW drive the loss on 4 tiny images close to zero", T,
    float, double) {
  encoder_options cfg;
  cfg.widths = {16, 32};
  cfg.strides = {1, 2};
  cfg.embed_dim = 8;
  encoder<T> net(cfg);
  encoder_init(net, 1);
  const index_t B = 4, H = 8, W = 8, K = 4, D = 8;
  auto img = random_images<T>(B, H, W, 3, 5);
  const auto [h, w] = net.output_grid(H, W);
  const index_t P = h * w;
  auto cls = test::uniform_vector<T>(K * D, 6);
  std::vector<int> y(B * P);
  rng g(8);
  for (auto& v : y) v = int(g.below(K));  // random labels: the net must memorise them
  y[3] = -1;                              // and one ignored pixel
  std::vector<index_t> offsets;
  for (index_t b = 0; b <= B; ++b) offsets.push_back(b * P);
  const class_sets<T> sets{offsets, matrix_ref<const T>(cls.data(), K, D), {}, {}};
  cosine_ce_options cp;  // scale 1/0.07 (the library's cosine CE, zss/loss/cosine_ce.hpp)
  cp.threads = 2;
  cosine_ce_cache<T> ce;
  encoder_cache<T> cache;
  tensor<T, 3> F = tensor<T, 3>::from_shape({B, P, D}), dF = F;
  adamw_state<T> opt;
  adamw_options o;
  o.lr = T(1e-2);
  o.weight_decay = T(0);
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    net.params.zero_grad();
    dF.fill(T(0));
    encoder_forward(F, cache, img, net, 2);
    T loss = 0;
    cosine_ce_forward_backward(loss, matrix_ref<T>(dF.data(), B * P, D), class_set_grads<T>{}, ce,
                               matrix_ref<const T>(F.data(), B * P, D), std::span<const int>(y),
                               std::span<const T>{}, sets, cp);
    last = double(loss);
    if (step == 0) first = last;
    encoder_backward(net, dF, cache, img, 2);
    adamw_step(std::span<T>(net.params.values(), net.params.size()),
               std::span<const T>(net.params.grads(), net.params.size()), opt, o);
  }
  MESSAGE("cosine CE " << first << " -> " << last);
  CHECK(first > 1.0);
  CHECK(last < 0.02);
}

}  // namespace test_nn_encoder
