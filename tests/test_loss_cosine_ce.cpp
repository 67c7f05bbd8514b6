// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/cosine_ce.hpp: the fused cosine cross-entropy against the unfused reference,
// its gradients against finite differences, edge cases, thread and precision agreement, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/loss/cosine_ce.hpp"

namespace test_loss_cosine_ce {

using namespace zss;

namespace {

template <class T>
double reference_loss(const test::class_problem<T>& p, const cosine_ce_options& prm) {
  const auto S = test::ref::cosine_logits(p.dX(), p.roff, p.dT(), p.dP(), p.poff, double(prm.alpha),
                                          double(prm.beta), double(prm.eps));
  return test::ref::cross_entropy(S, p.labels, p.dw());
}

template <class T>
T our_loss(const test::class_problem<T>& p, const cosine_ce_options& prm) {
  cosine_ce_cache<T> cache;
  T loss = -1;
  cosine_ce_forward(loss, cache, p.x(), p.y(), p.w(), p.sets(), prm);
  return loss;
}

struct grads {
  tensor<double, 2> dX, dT, dP;
  double loss = 0;
};

/// Analytic gradients, either fused or forward + backward, optionally with a non-unit dloss.
grads analytic(const test::class_problem<double>& p, const cosine_ce_options& prm, bool fused,
               double dloss = 1.0) {
  grads g;
  g.dX = xt::zeros<double>(p.X.shape());
  g.dT = xt::zeros<double>(p.Ts.shape());
  g.dP = xt::zeros<double>(p.Ps.shape());
  cosine_ce_cache<double> cache;
  class_set_grads<double> dW{as_matrix(g.dT), as_matrix(g.dP)};
  if (fused) {
    cosine_ce_forward_backward(g.loss, as_matrix(g.dX), dW, cache, p.x(), p.y(), p.w(), p.sets(),
                               prm, dloss);
  } else {
    cosine_ce_forward(g.loss, cache, p.x(), p.y(), p.w(), p.sets(), prm);
    cosine_ce_backward(as_matrix(g.dX), dW, dloss, cache, p.x(), p.y(), p.w(), p.sets(), prm);
  }
  return g;
}

void check_gradients(test::class_problem<double> p, const cosine_ce_options& prm,
                     double tol = 1e-6) {
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    const grads g = analytic(p, prm, fused);
    auto L = [&] { return double(our_loss(p, prm)); };
    CHECK(test::relative_error(g.dX, test::numeric_gradient(L, p.X.data(), p.X.size())) < tol);
    CHECK(test::relative_error(g.dT, test::numeric_gradient(L, p.Ts.data(), p.Ts.size())) < tol);
    if (p.Ps.size())
      CHECK(test::relative_error(g.dP, test::numeric_gradient(L, p.Ps.data(), p.Ps.size())) < tol);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("cosine_ce forward matches the unfused reference", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (index_t D : {1, 7, 16, 33}) {
    for (bool weighted : {false, true}) {
      CAPTURE(D);
      CAPTURE(weighted);
      auto p = test::make_class_problem(D * 7 + weighted, {5, 0, 9, 3}, {2, 1, 0, 3}, 3, D, 0.25,
                                        weighted)
                   .cast<T>();
      for (index_t block : {index_t(1), index_t(4), index_t(128)}) {
        cosine_ce_options prm;
        prm.alpha = T(12);
        prm.beta = T(7);
        prm.block_rows = block;
        const double ref = reference_loss(p, prm);
        CHECK(double(our_loss(p, prm)) == doctest::Approx(ref).epsilon(tol));
        // The fused path reports the same loss.
        tensor<T, 2> dX = xt::zeros<T>(p.X.shape());
        cosine_ce_cache<T> cache;
        T loss = 0;
        cosine_ce_forward_backward(loss, as_matrix(dX), class_set_grads<T>{}, cache, p.x(), p.y(),
                                   p.w(), p.sets(), prm);
        CHECK(double(loss) == doctest::Approx(ref).epsilon(tol));
      }
    }
  }
}

TEST_CASE("cosine_ce gradients equal central finite differences (double, rel. err < 1e-6)") {
  cosine_ce_options prm;
  prm.alpha = 9;
  prm.beta = 4;
  prm.threads = 1;  // many tiny calls: no OpenMP region per call
  SUBCASE("random shapes, ignored rows, pseudo classes, several blocks") {
    prm.block_rows = 3;
    check_gradients(test::make_class_problem(11, {4, 6, 0, 5}, {2, 0, 1, 3}, 3, 6, 0.3), prm);
  }
  SUBCASE("row weights") {
    check_gradients(test::make_class_problem(12, {5, 4}, {1, 2}, 2, 5, 0.2, true), prm);
  }
  SUBCASE("no pseudo classes (pseudo_offsets empty)") {
    check_gradients(test::make_class_problem(13, {7, 3}, {}, 4, 9, 0.1), prm);
  }
  SUBCASE("more seen classes than one reduction block of the GEMM (dX through its scratch)") {
    // Ks > gemm_kc: the product dX̂ = G·n(T) takes two reduction blocks, so dX is not written by
    // the product's epilogue but from the stored dX̂ (cosine_ce.hpp); both paths in one call,
    // since image 1's pseudo classes take the scratch path too.
    const index_t Ks = detail::gemm_kc + 3;
    auto p = test::make_class_problem(18, {4, 3}, {0, 2}, Ks, 3, 0.0);
    // Image 1's rows labelled with its pseudo classes: among 259 seen classes a pseudo class
    // hit by no label has a gradient (≈ 1e-6) below the finite differences' resolution.
    p.labels[4] = int(Ks), p.labels[5] = int(Ks) + 1, p.labels[6] = -1;
    check_gradients(p, prm);
  }
  SUBCASE("a single class: loss and gradient 0") {
    auto p = test::make_class_problem(14, {6}, {}, 1, 4, 0.0);
    const grads g = analytic(p, prm, true);
    CHECK(g.loss == doctest::Approx(0.0).scale(1e-12));
    for (double v : g.dX) CHECK(std::abs(v) < 1e-12);
    check_gradients(p, prm);
  }
  SUBCASE("ties: duplicated classes and duplicated rows") {
    auto p = test::make_class_problem(15, {6, 3}, {2, 2}, 3, 5, 0.0);
    for (index_t d = 0; d < 5; ++d)
      p.Ts(1, d) = p.Ts(0, d), p.Ps(1, d) = p.Ts(2, d), p.X(1, d) = p.X(0, d);
    check_gradients(p, prm);
  }
  SUBCASE("zero vectors inside the ε clamp (rows and classes)") {
    prm.eps = 1e-3;
    auto p = test::make_class_problem(16, {5, 4}, {1, 2}, 3, 4, 0.0);
    for (index_t d = 0; d < 4; ++d) p.X(2, d) = 0, p.Ts(1, d) = 0, p.Ps(0, d) = 0;
    check_gradients(p, prm);
  }
  SUBCASE("upstream gradient dloss scales and gradients add into the buffers") {
    auto p = test::make_class_problem(17, {5, 4}, {1, 2}, 3, 4, 0.2);
    const grads g1 = analytic(p, prm, true), g3 = analytic(p, prm, false, 3.0);
    CHECK(test::relative_error(g3.dX, xt::eval(3.0 * g1.dX)) < 1e-12);
    CHECK(test::relative_error(g3.dP, xt::eval(3.0 * g1.dP)) < 1e-12);
    // Adds into: calling twice doubles.
    tensor<double, 2> dX = xt::zeros<double>(p.X.shape());
    cosine_ce_cache<double> cache;
    double loss = 0;
    for (int rep = 0; rep < 2; ++rep)
      cosine_ce_forward_backward(loss, as_matrix(dX), class_set_grads<double>{}, cache, p.x(),
                                 p.y(), p.w(), p.sets(), prm);
    CHECK(test::relative_error(dX, xt::eval(2.0 * g1.dX)) < 1e-14);
  }
}

TEST_CASE_TEMPLATE(
    "cosine_ce edge cases: all rows ignored, huge scales, zero rows at the default ε", T, float,
    double) {
  SUBCASE("all rows ignored: loss 0, no gradient, no NaN") {
    auto p = test::make_class_problem(21, {4, 3}, {1, 1}, 2, 5, 1.0).cast<T>();
    tensor<T, 2> dX = xt::zeros<T>(p.X.shape()), dT = xt::zeros<T>(p.Ts.shape()),
                 dP = xt::zeros<T>(p.Ps.shape());
    cosine_ce_cache<T> cache;
    T loss = -1;
    cosine_ce_forward_backward(loss, as_matrix(dX), {as_matrix(dT), as_matrix(dP)}, cache, p.x(),
                               p.y(), p.w(), p.sets(), cosine_ce_options{});
    CHECK(loss == T(0));
    for (T v : dX) CHECK(v == T(0));
    for (T v : dT) CHECK(v == T(0));
    for (T v : dP) CHECK(v == T(0));
    // Zero weights on every labelled row count as "no row takes part" too.
    auto q = test::make_class_problem(22, {4}, {}, 2, 5, 0.0, true).cast<T>();
    std::fill(q.weights.begin(), q.weights.end(), T(0));
    cosine_ce_forward(loss, cache, q.x(), q.y(), q.w(), q.sets(), cosine_ce_options{});
    CHECK(loss == T(0));
  }
  SUBCASE("very large logits do not overflow") {
    auto p = test::make_class_problem(23, {6, 5}, {2, 1}, 3, 8, 0.1).cast<T>();
    cosine_ce_options prm;
    prm.alpha = T(1e4);
    prm.beta = T(3e4);
    tensor<T, 2> dX = xt::zeros<T>(p.X.shape()), dT = xt::zeros<T>(p.Ts.shape()),
                 dP = xt::zeros<T>(p.Ps.shape());
    cosine_ce_cache<T> cache;
    T loss = 0;
    cosine_ce_forward_backward(loss, as_matrix(dX), {as_matrix(dT), as_matrix(dP)}, cache, p.x(),
                               p.y(), p.w(), p.sets(), prm);
    CHECK(std::isfinite(loss));
    CHECK(double(loss) ==
          doctest::Approx(reference_loss(p, prm)).epsilon(std::is_same_v<T, float> ? 1e-4 : 1e-10));
    CHECK(test::all_finite(dX));
    CHECK(test::all_finite(dT));
    CHECK(test::all_finite(dP));
  }
  SUBCASE("a zero row and a zero class at the default ε give finite values") {
    auto p = test::make_class_problem(24, {4, 3}, {1, 1}, 2, 5, 0.0).cast<T>();
    for (index_t d = 0; d < 5; ++d) p.X(1, d) = 0, p.Ts(0, d) = 0;
    tensor<T, 2> dX = xt::zeros<T>(p.X.shape()), dT = xt::zeros<T>(p.Ts.shape()),
                 dP = xt::zeros<T>(p.Ps.shape());
    cosine_ce_cache<T> cache;
    T loss = 0;
    cosine_ce_forward_backward(loss, as_matrix(dX), {as_matrix(dT), as_matrix(dP)}, cache, p.x(),
                               p.y(), p.w(), p.sets(), cosine_ce_options{});
    CHECK(std::isfinite(loss));
    CHECK(double(loss) == doctest::Approx(reference_loss(p, cosine_ce_options{})).epsilon(1e-4));
    CHECK(test::all_finite(dX));
    CHECK(test::all_finite(dT));
  }
}

TEST_CASE_TEMPLATE("cosine_ce: 1 and 2 threads give bitwise identical loss and gradients", T, float,
                   double) {
  // Enough rows for several groups and blocks; images of uneven sizes.
  auto p = test::make_class_problem(31, {700, 13, 0, 450, 901}, {3, 0, 2, 5, 1}, 6, 37, 0.1, true)
               .cast<T>();
  std::vector<tensor<T, 2>> out;
  std::vector<T> losses;
  for (int threads : {1, 2, 3}) {
    cosine_ce_options prm;
    prm.threads = threads;
    prm.block_rows = 64;
    tensor<T, 2> dX = xt::zeros<T>(p.X.shape()), dT = xt::zeros<T>(p.Ts.shape()),
                 dP = xt::zeros<T>(p.Ps.shape());
    cosine_ce_cache<T> cache;
    T loss = 0;
    cosine_ce_forward_backward(loss, as_matrix(dX), {as_matrix(dT), as_matrix(dP)}, cache, p.x(),
                               p.y(), p.w(), p.sets(), prm);
    losses.push_back(loss);
    out.push_back(dX), out.push_back(dT), out.push_back(dP);
  }
  for (std::size_t r = 1; r < losses.size(); ++r) {
    CHECK(losses[r] == losses[0]);
    for (std::size_t k = 0; k < 3; ++k) CHECK(out[3 * r + k] == out[k]);
  }
}

TEST_CASE_TEMPLATE(
    "cosine_ce: accumulate = false writes dX without reading it, bitwise as adding "
    "into 0",
    T, float, double) {
  // dX starts as NaN: one value read would spread. Ignored rows (written 0), whole blocks
  // without a label, zero-weight rows, several groups; D = 37 runs the scalar tails.
  auto p = test::make_class_problem(41, {300, 7, 0, 260}, {3, 0, 2, 1}, 5, 37, 0.3, true).cast<T>();
  for (index_t i = 0; i < 64; ++i) p.labels[std::size_t(i)] = -1;  // a block with no label
  p.weights[70] = T(0);
  auto all_ignored = p;
  std::fill(all_ignored.labels.begin(), all_ignored.labels.end(), -1);
  for (const auto* q : {&p, &all_ignored}) {
    for (const T dloss : {T(1), T(0.25), T(0)}) {
      for (const bool one_call : {true, false}) {
        CAPTURE(q == &all_ignored);
        CAPTURE(dloss);
        CAPTURE(one_call);
        cosine_ce_options prm;
        prm.block_rows = 64;
        auto run = [&](tensor<T, 2>& dX, tensor<T, 2>& dT) {
          cosine_ce_cache<T> cache;
          T loss = 0;
          const class_set_grads<T> dW{as_matrix(dT), matrix_ref<T>{}};
          if (one_call) {
            cosine_ce_forward_backward(loss, as_matrix(dX), dW, cache, q->x(), q->y(), q->w(),
                                       q->sets(), prm, dloss);
          } else {
            cosine_ce_forward(loss, cache, q->x(), q->y(), q->w(), q->sets(), prm);
            cosine_ce_backward(as_matrix(dX), dW, dloss, cache, q->x(), q->y(), q->w(), q->sets(),
                               prm);
          }
          return loss;
        };
        tensor<T, 2> added = xt::zeros<T>(q->X.shape()), dT_added = xt::zeros<T>(q->Ts.shape());
        const T loss_added = run(added, dT_added);
        prm.accumulate = false;
        tensor<T, 2> written = xt::empty<T>(q->X.shape());
        written.fill(std::numeric_limits<T>::quiet_NaN());
        tensor<T, 2> dT_written = xt::zeros<T>(q->Ts.shape());
        CHECK(run(written, dT_written) == loss_added);
        CHECK(written == added);
        CHECK(dT_written == dT_added);  // the class gradient is added either way
        if (q == &p && dloss != T(0)) CHECK(xt::amax(xt::abs(added))() > T(0));
      }
    }
  }
}

TEST_CASE("cosine_ce: shards with the batch's weight sum add up to the batch (data parallelism)") {
  // Four images cut into two shards (as two ranks see them); each shard's loss and gradients with
  // the batch's Σw are its part of the batch's mean: losses and dT add up, dX and dP are the
  // batch's rows. Also a shard without a labelled row, and the fused and unfused paths.
  auto p = test::make_class_problem(43, {9, 7, 11, 5}, {2, 0, 3, 1}, 4, 6, 0.2, true);
  for (index_t i = 16; i < 27; ++i) p.labels[i] = -1;  // image 2: nothing labelled
  cosine_ce_options prm;
  prm.block_rows = 4;
  const grads full = analytic(p, prm, true, 0.7);
  double weight_sum = 0;
  for (index_t i = 0; i < p.labels.size(); ++i)
    if (p.labels[i] >= 0) weight_sum += p.weights[i];
  for (const auto& cut : std::vector<std::vector<index_t>>{{0, 2, 4}, {0, 1, 4}, {0, 3, 4}}) {
    for (bool fused : {true, false}) {
      CAPTURE(fused);
      double loss_sum = 0;
      tensor<double, 2> dT = xt::zeros<double>(p.Ts.shape());
      for (index_t k = 0; k + 1 < cut.size(); ++k) {
        const auto q = test::shard_of(p, cut[k], cut[k + 1]);
        grads g;
        g.dX = xt::zeros<double>(q.X.shape());
        g.dT = xt::zeros<double>(q.Ts.shape());
        g.dP = xt::zeros<double>(q.Ps.shape());
        cosine_ce_cache<double> cache;
        class_set_grads<double> dW{as_matrix(g.dT), as_matrix(g.dP)};
        if (fused) {
          cosine_ce_forward_backward(g.loss, as_matrix(g.dX), dW, cache, q.x(), q.y(), q.w(),
                                     q.sets(), prm, 0.7, weight_sum);
        } else {
          cosine_ce_forward(g.loss, cache, q.x(), q.y(), q.w(), q.sets(), prm, weight_sum);
          cosine_ce_backward(as_matrix(g.dX), dW, 0.7, cache, q.x(), q.y(), q.w(), q.sets(), prm);
        }
        loss_sum += g.loss;
        dT += g.dT;
        const index_t r0 = p.roff[cut[k]], m0 = p.poff[cut[k]];
        for (index_t i = 0; i < q.X.size(); ++i)
          CHECK(g.dX.data()[i] == doctest::Approx(full.dX.data()[r0 * p.D + i]).epsilon(1e-12));
        for (index_t i = 0; i < q.Ps.size(); ++i)
          CHECK(g.dP.data()[i] == doctest::Approx(full.dP.data()[m0 * p.D + i]).epsilon(1e-12));
      }
      CHECK(loss_sum == doctest::Approx(full.loss).epsilon(1e-13));
      CHECK(test::relative_error(dT, full.dT) < 1e-13);
    }
  }
  // A batch weight sum below the shard's is refused.
  const auto q = test::shard_of(p, 0, 2);
  cosine_ce_cache<double> cache;
  double loss = 0;
  CHECK_THROWS_WITH_AS(cosine_ce_forward(loss, cache, q.x(), q.y(), q.w(), q.sets(), prm, 1.0),
                       doctest::Contains("at least this shard's"), std::invalid_argument);
}

TEST_CASE("cosine_ce: float agrees with double within float tolerance") {
  auto pd = test::make_class_problem(41, {40, 25}, {3, 2}, 5, 64, 0.1, true);
  auto pf = pd.cast<float>();
  cosine_ce_options prmd;
  cosine_ce_options prmf;
  const grads gd = analytic(pd, prmd, true);
  tensor<float, 2> dX = xt::zeros<float>(pf.X.shape()), dT = xt::zeros<float>(pf.Ts.shape()),
                   dP = xt::zeros<float>(pf.Ps.shape());
  cosine_ce_cache<float> cache;
  float loss = 0;
  cosine_ce_forward_backward(loss, as_matrix(dX), {as_matrix(dT), as_matrix(dP)}, cache, pf.x(),
                             pf.y(), pf.w(), pf.sets(), prmf);
  CHECK(double(loss) == doctest::Approx(gd.loss).epsilon(1e-5));
  CHECK(test::relative_error(dX, gd.dX) < 1e-4);
  CHECK(test::relative_error(dT, gd.dT) < 1e-4);
  CHECK(test::relative_error(dP, gd.dP) < 1e-4);
}

TEST_CASE("cosine_ce rejects bad input with clear errors") {
  auto p = test::make_class_problem(51, {4, 3}, {1, 2}, 2, 5, 0.0);
  cosine_ce_cache<double> cache;
  cosine_ce_options prm;
  double loss = 0;
  auto run = [&](const test::class_problem<double>& q) {
    cosine_ce_forward(loss, cache, q.x(), q.y(), q.w(), q.sets(), prm);
  };
  SUBCASE("label out of range") {
    auto q = p;
    q.labels[5] = 4;  // image 1 has K = 2 + 2 = 4 classes
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("label 4 of row 5"), std::invalid_argument);
    q.labels[5] = -2;
    CHECK_THROWS_AS(run(q), std::invalid_argument);
  }
  SUBCASE("mismatched widths") {
    auto q = p;
    q.Ts = test::normal_matrix<double>(2, 6, 1);
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("width of the seen classes (6)"),
                         std::invalid_argument);
  }
  SUBCASE("offsets that do not cover X") {
    auto q = p;
    q.roff.back() = 6;
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("row_offsets"), std::invalid_argument);
  }
  SUBCASE("empty class set") {
    auto q = test::make_class_problem(52, {3, 2}, {1, 0}, 0, 5, 0.0);
    q.labels = {0, 0, 0, -1, -1};
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("empty class set"), std::invalid_argument);
  }
  SUBCASE("negative row weight and wrong label count") {
    auto q = p;
    q.weights.assign(7, 1.0);
    q.weights[3] = -1;
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("row weight"), std::invalid_argument);
    auto r = p;
    r.labels.pop_back();
    CHECK_THROWS_AS(run(r), std::invalid_argument);
  }
  SUBCASE("gradient of the wrong shape") {
    tensor<double, 2> dX = xt::zeros<double>({7, 4});
    CHECK_THROWS_AS(cosine_ce_forward_backward(loss, as_matrix(dX), class_set_grads<double>{},
                                               cache, p.x(), p.y(), p.w(), p.sets(), prm),
                    std::invalid_argument);
  }
  SUBCASE("non-finite input when checking is on") {
    auto q = p;
    q.X(2, 1) = std::nan("");
    prm.check_finite = true;
    CHECK_THROWS_WITH_AS(run(q), doctest::Contains("non-finite"), std::invalid_argument);
  }
}

}  // namespace test_loss_cosine_ce
