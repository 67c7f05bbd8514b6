// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/attention.hpp: grouped cross-attention forward against a per-query loop,
// backward against finite differences for every input and parameter, the one-memory-row case,
// threads and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/nn/attention.hpp"

namespace test_nn_attention {

using namespace zss;

namespace {
/// All tensors of one attention problem (queries X: n × d, memory: m × f, width a, output e).
template <class T>
struct problem {
  index_t n, d, m, f, a, e;
  std::vector<index_t> qoff, moff;
  aligned_vector<T> X, Mem, Wq, bq, Wk, bk, Wv, bv, Wo, bo;
  problem(std::vector<index_t> q, std::vector<index_t> mo, index_t d_, index_t f_, index_t a_,
          index_t e_, std::uint64_t seed)
      : n(q.back()),
        d(d_),
        m(mo.back()),
        f(f_),
        a(a_),
        e(e_),
        qoff(std::move(q)),
        moff(std::move(mo)) {
    X = test::uniform_vector<T>(n * d, seed);
    Mem = test::uniform_vector<T>(m * f, seed + 1);
    Wq = test::uniform_vector<T>(a * d, seed + 2);
    bq = test::uniform_vector<T>(a, seed + 3);
    Wk = test::uniform_vector<T>(a * f, seed + 4);
    bk = test::uniform_vector<T>(a, seed + 5);
    Wv = test::uniform_vector<T>(a * f, seed + 6);
    bv = test::uniform_vector<T>(a, seed + 7);
    Wo = test::uniform_vector<T>(e * a, seed + 8);
    bo = test::uniform_vector<T>(e, seed + 9);
  }
  attention_params<T> params() const {
    return {{{Wq.data(), a, d}, bq.data()},
            {{Wk.data(), a, f}, bk.data()},
            {{Wv.data(), a, f}, bv.data()},
            {{Wo.data(), e, a}, bo.data()}};
  }
  std::vector<T> forward(attention_cache<T>& cache, int threads = 1) const {
    std::vector<T> Y(n * e);
    attention_forward<T>({Y.data(), n, e}, cache, {X.data(), n, d}, {Mem.data(), m, f}, qoff, moff,
                         params(), threads);
    return Y;
  }
  test::ref::vec reference() const {
    using test::to_double;
    return test::ref::attention(to_double(X), n, d, to_double(Mem), m, f, qoff, moff, to_double(Wq),
                                to_double(bq), to_double(Wk), to_double(bk), to_double(Wv),
                                to_double(bv), to_double(Wo), to_double(bo), a, e);
  }
};
}  // namespace

TEST_CASE_TEMPLATE("attention forward matches the per-query loop", T, float, double) {
  eigen_single_thread_guard guard;
  // Groups: 2 queries / 3 memory rows, an empty group, 1 query / 1 memory row, 4 / 5.
  problem<T> p({0, 2, 2, 3, 7}, {0, 3, 4, 5, 10}, 6, 5, 8, 7, 1);
  attention_cache<T> cache;
  const auto Y = p.forward(cache);
  CHECK(test::scaled_max_error(Y, p.reference()) < test::forward_tol<T> * 5);
  // Attention rows sum to 1.
  for (index_t i = 0; i < cache.P.size(); ++i) CHECK(cache.P[i] >= T(0));
  CHECK(p.forward(cache, 2) == Y);
  // Larger, synthesizer-like: 4 images × 3 regions, memory 1 + 3 each, D 64.
  problem<T> q({0, 3, 6, 9, 12}, {0, 4, 8, 12, 16}, 64, 64, 64, 64, 2);
  const auto Yq = q.forward(cache);
  CHECK(test::scaled_max_error(Yq, q.reference()) < test::forward_tol<T> * 5);
  CHECK(q.forward(cache, 2) == Yq);
}

TEST_CASE("attention backward equals central finite differences for every input and parameter") {
  eigen_single_thread_guard guard;
  problem<double> p({0, 2, 2, 3, 7}, {0, 3, 4, 5, 10}, 6, 5, 4, 7, 11);
  const auto R = test::uniform_vector<double>(p.n * p.e, 99);
  auto loss = [&] {
    attention_cache<double> c;
    const auto Y = p.forward(c);
    double s = 0;
    for (index_t i = 0; i < Y.size(); ++i) s += R[i] * Y[i];
    return s;
  };
  attention_cache<double> cache;
  p.forward(cache);
  std::vector<double> dX(p.n * p.d, 0.0), dMem(p.m * p.f, 0.0), dWq(p.a * p.d, 0.0), dbq(p.a, 0.0),
      dWk(p.a * p.f, 0.0), dbk(p.a, 0.0), dWv(p.a * p.f, 0.0), dbv(p.a, 0.0), dWo(p.e * p.a, 0.0),
      dbo(p.e, 0.0);
  const attention_grads<double> g{{{dWq.data(), p.a, p.d}, dbq.data()},
                                  {{dWk.data(), p.a, p.f}, dbk.data()},
                                  {{dWv.data(), p.a, p.f}, dbv.data()},
                                  {{dWo.data(), p.e, p.a}, dbo.data()}};
  attention_backward<double>({dX.data(), p.n, p.d}, {dMem.data(), p.m, p.f}, g,
                             {R.data(), p.n, p.e}, cache, {p.X.data(), p.n, p.d},
                             {p.Mem.data(), p.m, p.f}, p.qoff, p.moff, p.params());
  auto check = [&](const std::vector<double>& analytic, aligned_vector<double>& x,
                   std::string name) {
    CAPTURE(name);
    CHECK(test::relative_error(analytic, test::numeric_gradient(loss, x.data(), x.size())) < 1e-6);
  };
  check(dX, p.X, "X");
  check(dMem, p.Mem, "Mem");
  check(dWq, p.Wq, "Wq");
  check(dbq, p.bq, "bq");
  check(dWk, p.Wk, "Wk");
  // b_k shifts every score of a row by the same amount: softmax is shift-invariant, so its
  // gradient is zero (analytic: to round-off; numeric: to the finite-difference noise).
  const auto num_bk = test::numeric_gradient(loss, p.bk.data(), p.bk.size());
  for (index_t i = 0; i < p.a; ++i) {
    CHECK(std::abs(dbk[i]) < 1e-12);
    CHECK(std::abs(num_bk[i]) < 1e-8);
  }
  check(dWv, p.Wv, "Wv");
  check(dbv, p.bv, "bv");
  check(dWo, p.Wo, "Wo");
  check(dbo, p.bo, "bo");
}

TEST_CASE_TEMPLATE("one memory row per group: constant attention, no gradient to the queries", T,
                   float, double) {
  eigen_single_thread_guard guard;
  problem<T> p({0, 3, 5}, {0, 1, 2}, 5, 4, 6, 5, 21);
  attention_cache<T> cache;
  const auto Y = p.forward(cache);
  for (T v : cache.P) CHECK(v == T(1));
  // Y_i = (Mem_b W_vᵀ + b_v) W_oᵀ + b_o for every query i of group b.
  for (index_t i = 0; i < 3; ++i)
    for (index_t j = 0; j < p.e; ++j) CHECK(Y[i * p.e + j] == Y[j]);
  const auto R = test::uniform_vector<T>(p.n * p.e, 5);
  std::vector<T> dX(p.n * p.d, T(0)), dWq(p.a * p.d, T(0)), dbq(p.a, T(0));
  attention_grads<T> g{};
  g.q = {{dWq.data(), p.a, p.d}, dbq.data()};
  attention_backward<T>({dX.data(), p.n, p.d}, {}, g, {R.data(), p.n, p.e}, cache,
                        {p.X.data(), p.n, p.d}, {p.Mem.data(), p.m, p.f}, p.qoff, p.moff,
                        p.params());
  for (T v : dX) CHECK(v == T(0));
  for (T v : dWq) CHECK(v == T(0));
  for (T v : dbq) CHECK(v == T(0));
}

TEST_CASE_TEMPLATE("attention backward: 1 and 2 threads give the same bits", T, float, double) {
  eigen_single_thread_guard guard;
  problem<T> p({0, 8, 16, 24, 32, 40}, {0, 9, 18, 27, 36, 45}, 72, 72, 72, 72, 31);
  const auto R = test::uniform_vector<T>(p.n * p.e, 32);
  std::vector<std::vector<T>> out;
  for (int threads : {1, 2}) {
    attention_cache<T> cache;
    auto Y = p.forward(cache, threads);
    std::vector<T> dX(p.n * p.d, T(0)), dMem(p.m * p.f, T(0)), dWq(p.a * p.d, T(0)),
        dWk(p.a * p.f, T(0)), dWv(p.a * p.f, T(0)), dWo(p.e * p.a, T(0)), dbo(p.e, T(0));
    const attention_grads<T> g{{{dWq.data(), p.a, p.d}, nullptr},
                               {{dWk.data(), p.a, p.f}, nullptr},
                               {{dWv.data(), p.a, p.f}, nullptr},
                               {{dWo.data(), p.e, p.a}, dbo.data()}};
    attention_backward<T>({dX.data(), p.n, p.d}, {dMem.data(), p.m, p.f}, g, {R.data(), p.n, p.e},
                          cache, {p.X.data(), p.n, p.d}, {p.Mem.data(), p.m, p.f}, p.qoff, p.moff,
                          p.params(), threads);
    out.insert(out.end(), {Y, dX, dMem, dWq, dWk, dWv, dWo, dbo});
  }
  for (index_t i = 0; i < 8; ++i) CHECK(out[i] == out[i + 8]);
}

TEST_CASE("attention rejects bad shapes and offsets with clear messages") {
  problem<float> p({0, 2, 3}, {0, 2, 3}, 4, 4, 4, 4, 41);
  attention_cache<float> cache;
  std::vector<float> Y(p.n * p.e);
  auto run = [&](std::vector<index_t> qoff, std::vector<index_t> moff) {
    attention_forward<float>({Y.data(), p.n, p.e}, cache, {p.X.data(), p.n, p.d},
                             {p.Mem.data(), p.m, p.f}, qoff, moff, p.params());
  };
  CHECK_THROWS_WITH_AS(run({0, 2, 4}, {0, 2, 3}),
                       doctest::Contains("query_offsets ends at 4, expected 3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(run({0, 2, 3}, {0, 3, 3}),
                       doctest::Contains("group 1 has 1 queries but no memory rows"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(run({0, 3}, {0, 2, 3}), doctest::Contains("memory groups"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(run({0, 2, 1, 3}, {0, 1, 2, 3}), doctest::Contains("decreases"),
                       std::invalid_argument);
  auto bad = p.params();
  bad.k.W.rows = 3;
  CHECK_THROWS_WITH_AS(attention_forward<float>({Y.data(), p.n, p.e}, cache, {p.X.data(), p.n, p.d},
                                                {p.Mem.data(), p.m, p.f}, p.qoff, p.moff, bad),
                       doctest::Contains("rows of W_k (3, 4)"), std::invalid_argument);
}

}  // namespace test_nn_attention
