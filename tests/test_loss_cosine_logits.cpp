// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/cosine_logits.hpp: the unfused logits pair against the reference and
// finite differences, threads, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/loss/cosine_logits.hpp"

namespace test_loss_cosine_logits {

using namespace zss;

namespace {
template <class T>
tensor<T, 2> logits(const test::class_problem<T>& p, const cosine_logits_options& prm,
                    cosine_logits_cache<T>& cache) {
  tensor<T, 2> S = tensor<T, 2>::from_shape({p.X.shape()[0], p.sets().max_classes()});
  S.fill(T(7));  // every entry is written
  cosine_logits_forward(as_matrix(S), cache, p.x(), p.sets(), prm);
  return S;
}
}  // namespace

TEST_CASE_TEMPLATE("cosine_logits forward matches the reference; entries past K_b are 0", T, float,
                   double) {
  auto p = test::make_class_problem(1, {5, 0, 7, 3}, {2, 1, 0, 4}, 3, 19, 0.0).cast<T>();
  cosine_logits_options prm;
  prm.alpha = T(10);
  prm.beta = T(3);
  for (int threads : {1, 2}) {
    prm.threads = threads;
    cosine_logits_cache<T> cache;
    const auto S = logits(p, prm, cache);
    const auto ref =
        test::ref::cosine_logits(p.dX(), p.roff, p.dT(), p.dP(), p.poff, 10, 3, double(prm.eps));
    const auto sets = p.sets();
    for (index_t b = 0; b < sets.images(); ++b)
      for (index_t i = p.roff[b]; i < p.roff[b + 1]; ++i)
        for (index_t k = 0; k < sets.max_classes(); ++k)
          if (k < sets.classes(b))
            CHECK(double(S(i, k)) == doctest::Approx(ref[i][k]).epsilon(1e-5).scale(1e-5));
          else
            CHECK(S(i, k) == T(0));
  }
}

TEST_CASE("cosine_logits backward equals central finite differences (X, T, P)") {
  for (double eps : {1e-12, 1e-3}) {
    CAPTURE(eps);
    auto p = test::make_class_problem(2, {4, 3, 5}, {1, 0, 2}, 2, 6, 0.0);
    if (eps > 1e-6)  // zero vectors inside the clamp
      for (index_t d = 0; d < 6; ++d) p.X(1, d) = 0, p.Ps(2, d) = 0;
    cosine_logits_options prm;
    prm.alpha = 5;
    prm.beta = 2;
    prm.eps = eps;
    prm.threads = 1;
    const index_t Kmax = p.sets().max_classes();
    tensor<double, 2> G = test::normal_matrix<double>(12, Kmax, 3);
    auto L = [&] {
      cosine_logits_cache<double> c;
      const auto S = logits(p, prm, c);
      double s = 0;
      for (std::size_t j = 0; j < S.size(); ++j) s += S.data()[j] * G.data()[j];
      return s;
    };
    cosine_logits_cache<double> cache;
    logits(p, prm, cache);
    tensor<double, 2> dX = xt::zeros<double>(p.X.shape()), dT = xt::zeros<double>(p.Ts.shape()),
                      dP = xt::zeros<double>(p.Ps.shape());
    cosine_logits_backward(as_matrix(dX), {as_matrix(dT), as_matrix(dP)},
                           as_matrix(std::as_const(G)), cache, p.x(), p.sets(), prm);
    CHECK(test::relative_error(dX, test::numeric_gradient(L, p.X.data(), p.X.size())) < 1e-6);
    CHECK(test::relative_error(dT, test::numeric_gradient(L, p.Ts.data(), p.Ts.size())) < 1e-6);
    CHECK(test::relative_error(dP, test::numeric_gradient(L, p.Ps.data(), p.Ps.size())) < 1e-6);
  }
}

TEST_CASE("cosine_logits errors") {
  auto p = test::make_class_problem(4, {3, 2}, {1, 1}, 2, 4, 0.0);
  cosine_logits_cache<double> cache;
  tensor<double, 2> S = xt::zeros<double>({5, 2});
  CHECK_THROWS_WITH_AS(
      cosine_logits_forward(as_matrix(S), cache, p.x(), p.sets(), cosine_logits_options{}),
      doctest::Contains("S has shape (5, 2), expected (5, 3)"), std::invalid_argument);
  auto q = p;
  q.Ps = test::normal_matrix<double>(2, 5, 1);
  S = xt::zeros<double>({5, 3});
  CHECK_THROWS_WITH_AS(
      cosine_logits_forward(as_matrix(S), cache, q.x(), q.sets(), cosine_logits_options{}),
      doctest::Contains("width of the pseudo classes (5)"), std::invalid_argument);
}

}  // namespace test_loss_cosine_logits
