// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/text_encoder.hpp: forward against a plain loop, backward against central
// finite differences (double) for the embeddings and the projection, threads, errors.
#include <doctest/doctest.h>

#include <vector>

#include "support/clip_reference.hpp"
#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/clip/text_encoder.hpp"

namespace test_clip_text_encoder {

using namespace zss;
using namespace zss::clip;

namespace {
/// A text encoder of V × E embeddings and a D × E projection with random values, and captions.
template <class T>
struct setup {
  index_t V = 9, E = 5, D = 4;
  param_buffer<T> buf;
  text_encoder_ids ids;
  std::vector<std::int32_t> tokens = {0, 3, 3, 8, 1, 2, 7, 7, 7, 4, 0};
  std::vector<index_t> offsets = {0, 4, 5, 9, 11};  // captions of 4, 1 (single token), 4, 2
  explicit setup(std::uint64_t seed) {
    ids = text_encoder_ids::declare(buf, V, E, D, "t.");
    buf.allocate();
    const auto v = test::uniform_vector<T>(buf.size(), seed);
    std::copy(v.begin(), v.end(), buf.values());
  }
  index_t B() const { return offsets.size() - 1; }
  std::vector<T> forward(text_encoder_cache<T>& cache, int threads = 1) {
    std::vector<T> out(B() * D);
    text_encoder_forward<T>({out.data(), B(), D}, cache, tokens, offsets, ids.params(buf), threads);
    return out;
  }
  test::ref::vec reference() {
    auto get = [&](index_t id) {
      const auto& e = buf.entries()[id];
      return test::ref::vec(buf.value(id), buf.value(id) + e.size);
    };
    return test::ref::text_encoder(tokens, {offsets.begin(), offsets.end()}, get(ids.embedding), E,
                                   get(ids.proj_w), D, get(ids.proj_b));
  }
};
}  // namespace

TEST_CASE_TEMPLATE("text encoder forward matches the plain loop and is unit-norm", T, float,
                   double) {
  setup<T> s(1);
  text_encoder_cache<T> cache;
  const auto out = s.forward(cache);
  CHECK(test::scaled_max_error(out, s.reference()) < test::forward_tol<T>);
  for (index_t b = 0; b < s.B(); ++b) {
    double n = 0;
    for (index_t d = 0; d < s.D; ++d) n += double(out[b * s.D + d]) * double(out[b * s.D + d]);
    CHECK(n == doctest::Approx(1.0).epsilon(1e-5));
  }
  CHECK(s.forward(cache, 2) == out);  // bitwise for any thread count
}

TEST_CASE("text encoder is a bag of words: token order does not matter") {
  setup<double> s(2);
  text_encoder_cache<double> cache;
  const auto a = s.forward(cache);
  std::swap(s.tokens[0], s.tokens[3]);  // reorder inside caption 0
  const auto b = s.forward(cache);
  CHECK(test::relative_error(a, b) < 1e-15);
}

TEST_CASE("text encoder backward equals central finite differences (double, rel. err < 1e-6)") {
  setup<double> s(3);
  const index_t B = s.B(), D = s.D;
  const auto R = test::uniform_vector<double>(B * D, 4);  // L = Σ R ⊙ out
  auto loss = [&] {
    text_encoder_cache<double> c;
    const auto out = s.forward(c);
    double l = 0;
    for (index_t i = 0; i < out.size(); ++i) l += R[i] * out[i];
    return l;
  };
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    s.buf.zero_grad();
    std::fill_n(s.buf.grads(), s.buf.size(), 0.25);  // backward must add
    text_encoder_cache<double> cache;
    const auto out = s.forward(cache, threads);
    text_encoder_backward<double>(s.ids.grads(s.buf), {R.data(), B, D}, cache, {out.data(), B, D},
                                  s.tokens, s.offsets, s.ids.params(s.buf), threads);
    for (index_t id : {s.ids.embedding, s.ids.proj_w, s.ids.proj_b}) {
      const auto& e = s.buf.entries()[id];
      CAPTURE(e.name);
      const auto num = test::numeric_gradient(loss, s.buf.value(id), e.size);
      std::vector<double> got(s.buf.grad(id), s.buf.grad(id) + e.size);
      for (auto& g : got) g -= 0.25;
      CHECK(test::relative_error(got, num) < 1e-6);
    }
  }
  // Rows of tokens that no caption uses receive no gradient.
  s.buf.zero_grad();
  text_encoder_cache<double> cache;
  const auto out = s.forward(cache);
  text_encoder_backward<double>(s.ids.grads(s.buf), {R.data(), B, D}, cache, {out.data(), B, D},
                                s.tokens, s.offsets, s.ids.params(s.buf));
  for (index_t j = 0; j < s.E; ++j) CHECK(s.buf.grad(s.ids.embedding)[5 * s.E + j] == 0.0);
}

TEST_CASE("text encoder refuses bad captions with a message") {
  setup<float> s(5);
  text_encoder_cache<float> cache;
  std::vector<float> out(s.B() * s.D);
  auto run = [&] {
    text_encoder_forward<float>({out.data(), s.B(), s.D}, cache, s.tokens, s.offsets,
                                s.ids.params(s.buf));
  };
  s.tokens[2] = 9;  // V = 9
  CHECK_THROWS_WITH_AS(run(), doctest::Contains("outside [0, 9)"), std::invalid_argument);
  s.tokens[2] = -1;
  CHECK_THROWS_AS(run(), std::invalid_argument);
  s.tokens[2] = 3;
  s.offsets = {0, 4, 4, 9, 11};
  CHECK_THROWS_WITH_AS(run(), doctest::Contains("caption 1 is empty"), std::invalid_argument);
  s.offsets = {0, 4, 5, 9, 10};
  CHECK_THROWS_AS(run(), std::invalid_argument);
}

}  // namespace test_clip_text_encoder
