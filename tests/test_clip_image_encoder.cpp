// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/image_encoder.hpp: the composition trunk → attention pooling → n(·) against
// its parts, dense tokens on the trunk's grid, the whole backward against central finite
// differences in double for every parameter, threads.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/clip/image_encoder.hpp"

namespace test_clip_image_encoder {

using namespace zss;
using namespace zss::clip;

namespace {
image_encoder_options tiny() {
  image_encoder_options o;
  o.widths = {3, 4};
  o.strides = {2, 1};
  o.token_width = 4;
  o.attn_width = 3;
  return o;
}
template <class T>
tensor<T, 4> images(index_t B, index_t H, std::uint64_t seed) {
  tensor<T, 4> im = tensor<T, 4>::from_shape({B, H, H, 3});
  const auto v = test::uniform_vector<T>(im.size(), seed);
  std::copy(v.begin(), v.end(), im.begin());
  return im;
}
}  // namespace

TEST_CASE_TEMPLATE("image encoder: unit CLS from trunk and head; dense tokens on the grid", T,
                   float, double) {
  param_buffer<T> buf;
  image_encoder<T> net(tiny(), 5, buf, "image.");
  buf.allocate();
  net.init(3);
  const auto v = test::uniform_vector<T>(buf.size(), 9);  // non-zero biases: no zero token
  std::copy(v.begin(), v.end(), buf.values());
  CHECK(buf.id("image.trunk.conv1.weight") == 0);
  CHECK(buf.entries().back().name == "image.pool.o.bias");
  const auto im = images<T>(3, 8, 4);
  const auto [h, w] = net.grid(8, 8);
  CHECK(h == 4);
  CHECK(w == 4);
  image_encoder_cache<T> cache;
  std::vector<T> cls(3 * 5), tok(3 * 16 * 5), cls2(3 * 5);
  image_encoder_forward<T>({cls.data(), 3, 5}, cache, im, net);
  // The same through the parts.
  tensor<T, 3> X = tensor<T, 3>::from_shape({3, 16, 4});
  encoder_cache<T> ec;
  encoder_forward(X, ec, im, net.trunk);
  attention_pool_cache<T> pc;
  std::vector<T> Y(15);
  attention_pool_forward<T>({Y.data(), 3, 5}, pc, {X.data(), 48, 4}, 16, net.head());
  for (index_t b = 0; b < 3; ++b) {
    double n = 0;
    for (index_t d = 0; d < 5; ++d) n += double(Y[b * 5 + d]) * double(Y[b * 5 + d]);
    for (index_t d = 0; d < 5; ++d)
      CHECK(double(cls[b * 5 + d]) == doctest::Approx(double(Y[b * 5 + d]) / std::sqrt(n)));
  }
  image_encoder_dense<T>({tok.data(), 48, 5}, {cls2.data(), 3, 5}, cache, im, net, 2);
  CHECK(cls2 == cls);  // the same forward, any thread count
  for (index_t r = 0; r < 48; ++r) {
    double n = 0;
    for (index_t d = 0; d < 5; ++d) n += double(tok[r * 5 + d]) * double(tok[r * 5 + d]);
    CHECK(n == doctest::Approx(1.0).epsilon(1e-5));
  }
  CHECK(net.forward_flops(8, 8) > net.trunk.forward_flops(8, 8));
}

TEST_CASE("image encoder backward equals finite differences for every parameter (double)") {
  param_buffer<double> buf;
  image_encoder<double> net(tiny(), 3, buf, "image.");
  buf.allocate();
  net.init(5);
  const index_t B = 2, D = 3;
  const auto im = images<double>(B, 6, 6);
  const auto R = test::uniform_vector<double>(B * D, 7);
  auto loss = [&] {
    image_encoder_cache<double> c;
    std::vector<double> out(B * D);
    image_encoder_forward<double>({out.data(), B, D}, c, im, net);
    double l = 0;
    for (index_t i = 0; i < out.size(); ++i) l += R[i] * out[i];
    return l;
  };
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    std::fill_n(buf.grads(), buf.size(), 0.125);  // backward must add
    image_encoder_cache<double> cache;
    std::vector<double> out(B * D);
    image_encoder_forward<double>({out.data(), B, D}, cache, im, net, threads);
    image_encoder_backward<double>(net, {R.data(), B, D}, cache, {out.data(), B, D}, im, threads);
    for (const auto& e : buf.entries()) {
      CAPTURE(e.name);
      const index_t id = buf.id(e.name);
      const auto num = test::numeric_gradient(loss, buf.value(id), e.size);
      std::vector<double> got(buf.grad(id), buf.grad(id) + e.size);
      for (auto& g : got) g -= 0.125;
      CHECK(test::relative_error(got, num) < 1e-6);
    }
  }
}

}  // namespace test_clip_image_encoder
