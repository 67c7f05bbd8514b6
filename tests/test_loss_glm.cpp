// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/glm.hpp: every pool variant against the plain reference, gradients against
// finite differences, bank empty and full, ρ selecting one pixel, threads, float vs double, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/loss/glm.hpp"

namespace test_loss_glm {

using namespace zss;

namespace {

constexpr glm_pool all_pools[] = {glm_pool::attention, glm_pool::mean, glm_pool::dense,
                                  glm_pool::selective};

test::ref::pool ref_pool(glm_pool p) {
  switch (p) {
    case glm_pool::attention:
      return test::ref::pool::attention;
    case glm_pool::mean:
      return test::ref::pool::mean;
    case glm_pool::dense:
      return test::ref::pool::dense;
    default:
      return test::ref::pool::selective;
  }
}

const char* name(glm_pool p) {
  switch (p) {
    case glm_pool::attention:
      return "attention";
    case glm_pool::mean:
      return "mean";
    case glm_pool::dense:
      return "dense";
    default:
      return "selective";
  }
}

template <class T>
struct glm_problem {
  index_t B, P, D;
  tensor<T, 2> R, C;
  cls_bank<T> bank;
  glm_problem(std::uint64_t seed, index_t b, index_t p, index_t d, index_t capacity, index_t pushes)
      : B(b),
        P(p),
        D(d),
        R(xt::cast<T>(test::normal_matrix<double>(b * p, d, seed))),
        C(xt::cast<T>(test::normal_matrix<double>(b, d, seed + 1))),
        bank(capacity, d) {
    if (pushes) {
      tensor<T, 2> V = xt::cast<T>(test::normal_matrix<double>(pushes, d, seed + 2));
      bank.push(as_matrix(std::as_const(V)));
    }
  }
  matrix_ref<const T> r() const { return as_matrix(R); }
  matrix_ref<const T> c() const { return as_matrix(C); }
  test::ref::dmat bank_rows() const {
    test::ref::dmat v;
    for (index_t i = 0; i < bank.size(); ++i)
      v.push_back(std::vector<double>(bank.row(i), bank.row(i) + D));
    return v;
  }
  double reference(const glm_options& prm) const {
    return test::ref::glm(test::ref::to_dmat(r()), P, test::ref::to_dmat(c()), bank_rows(),
                          ref_pool(prm.pool), double(prm.tau), double(prm.rho), double(prm.eps));
  }
  T loss(const glm_options& prm) const {
    glm_cache<T> cache;
    T l = 0;
    glm_forward(l, cache, r(), P, c(), bank, prm);
    return l;
  }
};

}  // namespace

TEST_CASE_TEMPLATE("glm forward matches the reference for every pool variant", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (auto pool : all_pools) {
    CAPTURE(name(pool));
    for (index_t pushes : {0, 3, 9}) {  // bank empty, partly filled, full after wrapping
      CAPTURE(pushes);
      glm_problem<T> p(7 + pushes, 3, 11, 17, 5, pushes);
      glm_options prm;
      prm.pool = pool;
      prm.rho = T(0.3);
      prm.block_rows = 4;
      CHECK(double(p.loss(prm)) == doctest::Approx(p.reference(prm)).epsilon(tol));
    }
  }
}

TEST_CASE("glm gradients equal central finite differences (double, rel. err < 1e-6)") {
  for (auto pool : all_pools) {
    for (index_t pushes : {0, 2, 6}) {
      CAPTURE(name(pool));
      CAPTURE(pushes);
      glm_problem<double> p(21 + pushes, 3, 5, 4, 4, pushes);
      glm_options prm;
      prm.pool = pool;
      prm.tau = 0.2;
      prm.rho = 0.4;
      prm.threads = 1;
      prm.block_rows = 3;
      tensor<double, 2> dR = xt::zeros<double>(p.R.shape());
      glm_cache<double> cache;
      double loss = 0;
      glm_forward(loss, cache, p.r(), p.P, p.c(), p.bank, prm);
      glm_backward(as_matrix(dR), 1.0, cache, p.r(), p.P, p.c(), prm);
      const auto g =
          test::numeric_gradient([&] { return double(p.loss(prm)); }, p.R.data(), p.R.size());
      CHECK(test::relative_error(dR, g) < 1e-6);
      // The one-call path adds the same gradient.
      tensor<double, 2> dR2 = xt::zeros<double>(p.R.shape());
      double loss2 = 0;
      glm_forward_backward(loss2, as_matrix(dR2), cache, p.r(), p.P, p.c(), p.bank, prm);
      CHECK(loss2 == doctest::Approx(loss).epsilon(1e-14));
      CHECK(test::relative_error(dR2, dR) < 1e-13);
    }
  }
}

TEST_CASE("glm: shards of a batch add up to the batch for every pool variant (data parallelism)") {
  // Five images cut into shards as ranks see them: each shard's loss and dR, with the batch's CLS
  // tokens as keys (plus the bank), are its part of the batch's; the shards' dR rows are the
  // batch's rows.
  glm_problem<double> p(71, 5, 7, 9, 4, 6);
  for (auto pool : all_pools) {
    CAPTURE(name(pool));
    glm_options prm;
    prm.pool = pool;
    prm.rho = 0.3;
    prm.block_rows = 4;
    glm_cache<double> full_cache;
    double full = 0;
    tensor<double, 2> dR_full = xt::zeros<double>(p.R.shape());
    glm_forward_backward(full, as_matrix(dR_full), full_cache, p.r(), p.P, p.c(), p.bank, prm, 0.8);
    for (const auto& cut : std::vector<std::vector<index_t>>{{0, 2, 5}, {0, 1, 4, 5}}) {
      double sum = 0;
      for (index_t k = 0; k + 1 < cut.size(); ++k) {
        const index_t b0 = cut[k], nb = cut[k + 1] - cut[k];
        const matrix_ref<const double> R(p.R.data() + b0 * p.P * p.D, nb * p.P, p.D),
            C(p.C.data() + b0 * p.D, nb, p.D);
        tensor<double, 2> dR = xt::zeros<double>({nb * p.P, p.D});
        glm_cache<double> cache;
        double loss = 0;
        glm_forward_backward(loss, as_matrix(dR), cache, R, p.P, C, p.bank, prm, 0.8,
                             glm_shard<double>{p.c(), b0});
        sum += loss;
        for (index_t i = 0; i < dR.size(); ++i)
          CHECK(dR.data()[i] == doctest::Approx(dR_full.data()[b0 * p.P * p.D + i]).epsilon(1e-13));
        // The separate forward and backward keep the shard in the cache.
        glm_cache<double> c2;
        double l2 = 0;
        glm_forward(l2, c2, R, p.P, C, p.bank, prm, glm_shard<double>{p.c(), b0});
        tensor<double, 2> dR2 = xt::zeros<double>({nb * p.P, p.D});
        glm_backward(as_matrix(dR2), 0.8, c2, R, p.P, C, prm);
        CHECK(l2 == loss);
        CHECK(test::relative_error(dR2, dR) < 1e-14);
      }
      CHECK(sum == doctest::Approx(full).epsilon(1e-13));
    }
  }
  glm_options prm;
  glm_cache<double> cache;
  double loss = 0;
  tensor<double, 2> dR = xt::zeros<double>({2 * p.P, p.D});
  const matrix_ref<const double> R(p.R.data(), 2 * p.P, p.D), C(p.C.data() + p.D, 2, p.D);
  CHECK_THROWS_WITH_AS(
      glm_forward(loss, cache, R, p.P, C, p.bank, prm, glm_shard<double>{p.c(), 4}),
      doctest::Contains("not in a batch of 5"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      glm_forward(loss, cache, R, p.P, C, p.bank, prm, glm_shard<double>{p.c(), 0}),
      doctest::Contains("differs from the batch's CLS token 0"), std::invalid_argument);
}

TEST_CASE("glm selective: ρ selecting one pixel pools exactly that pixel") {
  glm_problem<double> p(31, 2, 6, 5, 0, 0);
  glm_options prm;
  prm.pool = glm_pool::selective;
  prm.rho = 0.1;  // ⌈0.6⌉ = 1 pixel per image
  prm.threads = 1;
  glm_cache<double> cache;
  double loss = 0;
  glm_forward(loss, cache, p.r(), p.P, p.c(), p.bank, prm);
  REQUIRE(cache.selected_per_image == 1);
  CHECK(loss == doctest::Approx(p.reference(prm)).epsilon(1e-12));
  for (index_t b = 0; b < 2; ++b) {
    const index_t s = cache.selected[b];
    for (index_t d = 0; d < 5; ++d) CHECK(cache.pooled[b * 5 + d] == p.R(b * 6 + s, d));
  }
  tensor<double, 2> dR = xt::zeros<double>(p.R.shape());
  glm_backward(as_matrix(dR), 1.0, cache, p.r(), p.P, p.c(), prm);
  const auto g = test::numeric_gradient([&] { return p.loss(prm); }, p.R.data(), p.R.size());
  CHECK(test::relative_error(dR, g) < 1e-6);
  // Only the selected rows receive gradient.
  for (index_t i = 0; i < 12; ++i) {
    double n = 0;
    for (index_t d = 0; d < 5; ++d) n += std::abs(dR(i, d));
    CHECK((n > 0) == (i % 6 == cache.selected[i / 6]));
  }
}

TEST_CASE("glm edge cases: ties, zero features, large logits") {
  SUBCASE("ties: identical pixels and identical CLS tokens") {
    glm_problem<double> p(41, 3, 4, 5, 3, 3);
    for (index_t d = 0; d < 5; ++d) {
      p.R(1, d) = p.R(0, d);
      p.C(2, d) = p.C(1, d);
    }
    for (auto pool : all_pools) {
      CAPTURE(name(pool));
      glm_options prm;
      prm.pool = pool;
      prm.tau = 0.3;
      prm.rho = 0.5;
      prm.threads = 1;
      tensor<double, 2> dR = xt::zeros<double>(p.R.shape());
      glm_cache<double> cache;
      double loss = 0;
      glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, prm);
      CHECK(loss == doctest::Approx(p.reference(prm)).epsilon(1e-12));
      if (pool != glm_pool::selective)  // a tie at the selection boundary is not differentiable
        CHECK(test::relative_error(dR, test::numeric_gradient([&] { return p.loss(prm); },
                                                              p.R.data(), p.R.size())) < 1e-6);
    }
  }
  SUBCASE("zero feature rows inside the ε clamp") {
    glm_problem<double> p(42, 2, 4, 3, 0, 0);
    for (index_t d = 0; d < 3; ++d) p.R(2, d) = 0;
    glm_options prm;
    prm.pool = glm_pool::dense;
    prm.eps = 1e-3;
    prm.threads = 1;
    tensor<double, 2> dR = xt::zeros<double>(p.R.shape());
    glm_cache<double> cache;
    double loss = 0;
    glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, prm);
    CHECK(test::relative_error(dR, test::numeric_gradient([&] { return p.loss(prm); }, p.R.data(),
                                                          p.R.size())) < 1e-6);
    // All features zero at the default ε: finite, loss log(B).
    p.R.fill(0);
    for (auto pool : all_pools) {
      glm_options q;
      q.pool = pool;
      dR.fill(0);
      glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, q);
      CHECK(loss == doctest::Approx(std::log(2.0)));
      CHECK(test::all_finite(dR));
    }
  }
  SUBCASE("large attention logits and a tiny τ stay finite") {
    glm_problem<float> p(43, 2, 8, 16, 4, 4);
    p.R *= 300.f;
    p.C *= 300.f;
    for (auto pool : all_pools) {
      glm_options prm;
      prm.pool = pool;
      prm.tau = 1e-3f;
      tensor<float, 2> dR = xt::zeros<float>(p.R.shape());
      glm_cache<float> cache;
      float loss = 0;
      glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, prm);
      CHECK(std::isfinite(loss));
      CHECK(test::all_finite(dR));
    }
  }
}

TEST_CASE_TEMPLATE("glm: 1 and 2 threads give bitwise identical results", T, float, double) {
  glm_problem<T> p(51, 5, 300, 40, 8, 11);
  for (auto pool : all_pools) {
    CAPTURE(name(pool));
    std::vector<tensor<T, 2>> out;
    std::vector<T> losses;
    for (int threads : {1, 2}) {
      glm_options prm;
      prm.pool = pool;
      prm.threads = threads;
      prm.block_rows = 32;
      tensor<T, 2> dR = xt::zeros<T>(p.R.shape());
      glm_cache<T> cache;
      T loss = 0;
      glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, prm);
      out.push_back(dR);
      losses.push_back(loss);
    }
    CHECK(losses[0] == losses[1]);
    CHECK(out[0] == out[1]);
  }
}

TEST_CASE_TEMPLATE("glm: accumulate = false writes dR without reading it, bitwise as adding into 0",
                   T, float, double) {
  // dR starts as NaN: one value read would spread. D = 37 runs the SIMD loops' scalar tails.
  glm_problem<T> p(71, 3, 45, 37, 6, 4);
  for (auto pool : all_pools) {
    for (const T dloss : {T(1), T(0.5), T(0)}) {
      for (const bool one_call : {true, false}) {
        CAPTURE(name(pool));
        CAPTURE(dloss);
        CAPTURE(one_call);
        glm_options prm;
        prm.pool = pool;
        prm.rho = 0.3;
        prm.block_rows = 16;
        auto run = [&](tensor<T, 2>& dR) {
          glm_cache<T> cache;
          T loss = 0;
          if (one_call) {
            glm_forward_backward(loss, as_matrix(dR), cache, p.r(), p.P, p.c(), p.bank, prm, dloss);
          } else {
            glm_forward(loss, cache, p.r(), p.P, p.c(), p.bank, prm);
            glm_backward(as_matrix(dR), dloss, cache, p.r(), p.P, p.c(), prm);
          }
          return loss;
        };
        tensor<T, 2> added = xt::zeros<T>(p.R.shape());
        const T loss_added = run(added);
        prm.accumulate = false;
        tensor<T, 2> written = xt::empty<T>(p.R.shape());
        written.fill(std::numeric_limits<T>::quiet_NaN());
        CHECK(run(written) == loss_added);
        CHECK(written == added);
        if (dloss != T(0)) CHECK(xt::amax(xt::abs(added))() > T(0));  // not all zero
      }
    }
  }
}

TEST_CASE("glm: float agrees with double within float tolerance") {
  glm_problem<double> pd(61, 4, 64, 32, 8, 8);
  glm_problem<float> pf(61, 4, 64, 32, 8, 8);
  for (auto pool : all_pools) {
    CAPTURE(name(pool));
    glm_options qd;
    glm_options qf;
    qd.pool = pool, qf.pool = pool;
    tensor<double, 2> dRd = xt::zeros<double>(pd.R.shape());
    tensor<float, 2> dRf = xt::zeros<float>(pf.R.shape());
    glm_cache<double> cd;
    glm_cache<float> cf;
    double ld = 0;
    float lf = 0;
    glm_forward_backward(ld, as_matrix(dRd), cd, pd.r(), pd.P, pd.c(), pd.bank, qd);
    glm_forward_backward(lf, as_matrix(dRf), cf, pf.r(), pf.P, pf.c(), pf.bank, qf);
    CHECK(double(lf) == doctest::Approx(ld).epsilon(1e-5));
    CHECK(test::relative_error(dRf, dRd) < 2e-4);
  }
}

TEST_CASE("glm rejects bad input with clear errors") {
  glm_problem<double> p(71, 2, 4, 3, 2, 1);
  glm_cache<double> cache;
  glm_options prm;
  double loss = 0;
  CHECK_THROWS_WITH_AS(glm_forward(loss, cache, p.r(), 3, p.c(), p.bank, prm),
                       doctest::Contains("rows of R (8)"), std::invalid_argument);
  cls_bank<double> wrong(4, 5);
  CHECK_THROWS_WITH_AS(glm_forward(loss, cache, p.r(), p.P, p.c(), wrong, prm),
                       doctest::Contains("bank has width 5"), std::invalid_argument);
  tensor<double, 2> C2 = test::normal_matrix<double>(2, 4, 1);
  CHECK_THROWS_WITH_AS(
      glm_forward(loss, cache, p.r(), p.P, as_matrix(std::as_const(C2)), p.bank, prm),
      doctest::Contains("width of C (4)"), std::invalid_argument);
  prm.pool = glm_pool::selective;
  prm.rho = 0;
  CHECK_THROWS_WITH_AS(glm_forward(loss, cache, p.r(), p.P, p.c(), p.bank, prm),
                       doctest::Contains("rho"), std::invalid_argument);
  prm.rho = 0.5;
  prm.tau = 0;
  CHECK_THROWS_AS(glm_forward(loss, cache, p.r(), p.P, p.c(), p.bank, prm), std::invalid_argument);
  // A default-constructed bank means "no bank".
  glm_options ok;
  CHECK_NOTHROW(glm_forward(loss, cache, p.r(), p.P, p.c(), cls_bank<double>{}, ok));
}

}  // namespace test_loss_glm
