// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/attention_pool.hpp: the pooling against CLIP's formula (a key and a value
// per memory row), the dense tokens against the plain loop, the identity y = Σ a z that makes
// MaskCLIP's tokens text-aligned, backward against central finite differences (double).
#include <doctest/doctest.h>

#include <vector>

#include "support/clip_reference.hpp"
#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/clip/attention_pool.hpp"

namespace test_clip_attention_pool {

using namespace zss;
using namespace zss::clip;

namespace {
template <class T>
struct head {
  index_t B, Q, C, A, D;
  param_buffer<T> buf;
  attention_pool_ids ids;
  aligned_vector<T> X;
  head(index_t b, index_t q, index_t c, index_t a, index_t d, std::uint64_t seed)
      : B(b), Q(q), C(c), A(a), D(d) {
    ids = attention_pool_ids::declare(buf, C, A, D, "p.");
    buf.allocate();
    const auto v = test::uniform_vector<T>(buf.size(), seed);
    std::copy(v.begin(), v.end(), buf.values());
    X = test::uniform_vector<T>(B * Q * C, seed + 1, T(-2), T(2));
  }
  test::ref::vec get(index_t id) const {
    return test::ref::vec(buf.value(id), buf.value(id) + buf.entries()[id].size);
  }
  std::vector<T> pool(attention_pool_cache<T>& cache, int threads = 1) const {
    std::vector<T> Y(B * D);
    attention_pool_forward<T>({Y.data(), B, D}, cache, {X.data(), B * Q, C}, Q, ids.params(buf),
                              threads);
    return Y;
  }
  std::vector<T> dense(dense_tokens_cache<T>& cache) const {
    std::vector<T> Z(B * Q * D);
    dense_tokens_forward<T>({Z.data(), B * Q, D}, cache, {X.data(), B * Q, C}, ids.params(buf));
    return Z;
  }
};
}  // namespace

TEST_CASE_TEMPLATE("attention pooling matches CLIP's formula; dense tokens the plain loop", T,
                   float, double) {
  for (auto [B, Q, C, A, D] :
       {std::array<index_t, 5>{1, 1, 3, 2, 4}, {3, 7, 5, 4, 6}, {2, 16, 17, 9, 8}}) {
    CAPTURE(Q);
    head<T> h(B, Q, C, A, D, 10 + Q);
    attention_pool_cache<T> cache;
    const auto Y = h.pool(cache);
    const auto ref = test::ref::attention_pool(
        test::to_double(h.X), B, Q, C, h.get(h.ids.q_w), h.get(h.ids.q_b), h.get(h.ids.k_w),
        h.get(h.ids.v_w), h.get(h.ids.v_b), A, h.get(h.ids.o_w), h.get(h.ids.o_b), D);
    CHECK(test::scaled_max_error(Y, ref) < test::forward_tol<T>);
    CHECK(h.pool(cache, 2) == Y);  // bitwise for any thread count
    dense_tokens_cache<T> dc;
    const auto Z = h.dense(dc);
    const auto zref =
        test::ref::dense_tokens(test::to_double(h.X), B * Q, C, h.get(h.ids.v_w), h.get(h.ids.v_b),
                                A, h.get(h.ids.o_w), h.get(h.ids.o_b), D);
    CHECK(test::scaled_max_error(Z, zref) < test::forward_tol<T>);
  }
}

TEST_CASE("the CLS output is the attention-weighted mean of the dense tokens (MaskCLIP)") {
  head<double> h(2, 6, 5, 4, 3, 20);
  attention_pool_cache<double> cache;
  const auto Y = h.pool(cache);
  dense_tokens_cache<double> dc;
  const auto Z = h.dense(dc);
  // The mean token's dense token: the same projections applied to the mean of X.
  for (index_t b = 0; b < h.B; ++b) {
    std::vector<double> m(h.C, 0.0);
    for (index_t q = 0; q < h.Q; ++q)
      for (index_t c = 0; c < h.C; ++c) m[c] += h.X[(b * h.Q + q) * h.C + c] / double(h.Q);
    const auto zm = test::ref::dense_tokens(m, 1, h.C, h.get(h.ids.v_w), h.get(h.ids.v_b), h.A,
                                            h.get(h.ids.o_w), h.get(h.ids.o_b), h.D);
    const double* a = cache.attn.data() + b * (h.Q + 1);
    double asum = 0;
    for (index_t j = 0; j <= h.Q; ++j) asum += a[j];
    CHECK(asum == doctest::Approx(1.0).epsilon(1e-12));
    for (index_t d = 0; d < h.D; ++d) {
      double y = a[0] * zm[d];
      for (index_t q = 0; q < h.Q; ++q) y += a[q + 1] * Z[(b * h.Q + q) * h.D + d];
      CHECK(Y[b * h.D + d] == doctest::Approx(y).epsilon(1e-12));
    }
  }
}

TEST_CASE("attention pooling and dense tokens backward equal finite differences (double)") {
  for (auto [B, Q, C, A, D] : {std::array<index_t, 5>{1, 1, 3, 2, 4}, {3, 5, 4, 3, 2}}) {
    CAPTURE(Q);
    head<double> h(B, Q, C, A, D, 30 + Q);
    for (int mode = 0; mode < 2; ++mode) {  // 0: pooling, 1: dense tokens
      CAPTURE(mode);
      const index_t rows = mode == 0 ? B : B * Q;
      const auto R = test::uniform_vector<double>(rows * D, 40 + mode);
      auto loss = [&] {
        std::vector<double> out;
        if (mode == 0) {
          attention_pool_cache<double> c;
          out = h.pool(c);
        } else {
          dense_tokens_cache<double> c;
          out = h.dense(c);
        }
        double l = 0;
        for (index_t i = 0; i < out.size(); ++i) l += R[i] * out[i];
        return l;
      };
      for (int threads : {1, 2}) {
        CAPTURE(threads);
        std::fill_n(h.buf.grads(), h.buf.size(), 0.5);  // backward must add
        std::vector<double> dX(B * Q * C, -0.5);
        if (mode == 0) {
          attention_pool_cache<double> c;
          h.pool(c, threads);
          attention_pool_backward<double>({dX.data(), B * Q, C}, h.ids.grads(h.buf),
                                          {R.data(), B, D}, c, {h.X.data(), B * Q, C}, Q,
                                          h.ids.params(h.buf), threads);
        } else {
          dense_tokens_cache<double> c;
          h.dense(c);
          dense_tokens_backward<double>({dX.data(), B * Q, C}, h.ids.grads(h.buf),
                                        {R.data(), B * Q, D}, c, {h.X.data(), B * Q, C},
                                        h.ids.params(h.buf), threads);
        }
        for (auto& v : dX) v += 0.5;
        const auto numX = test::numeric_gradient(loss, h.X.data(), h.X.size());
        CHECK(test::relative_error(dX, numX) < 1e-6);
        for (const auto& e : h.buf.entries()) {
          CAPTURE(e.name);
          const index_t id = h.buf.id(e.name);
          const auto num = test::numeric_gradient(loss, h.buf.value(id), e.size);
          std::vector<double> got(h.buf.grad(id), h.buf.grad(id) + e.size);
          for (auto& g : got) g -= 0.5;
          CHECK(test::relative_error(got, num) < 1e-6);
        }
      }
    }
  }
}

TEST_CASE("attention pooling refuses mismatched shapes") {
  head<float> h(2, 4, 3, 2, 2, 50);
  attention_pool_cache<float> cache;
  std::vector<float> Y(4);
  CHECK_THROWS_WITH_AS(attention_pool_forward<float>({Y.data(), 2, 2}, cache, {h.X.data(), 8, 3}, 3,
                                                     h.ids.params(h.buf)),
                       doctest::Contains("not a multiple of Q = 3"), std::invalid_argument);
  CHECK_THROWS_AS(attention_pool_forward<float>({Y.data(), 2, 2}, cache, {h.X.data(), 6, 4}, 3,
                                                h.ids.params(h.buf)),
                  std::invalid_argument);
}

}  // namespace test_clip_attention_pool
