// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/contrastive_loss.hpp: the symmetric InfoNCE against a plain loop, backward
// (embeddings and the log logit scale, with and without queues) against central finite
// differences in double, the accuracies, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/clip_reference.hpp"
#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/clip/contrastive_loss.hpp"

namespace test_clip_contrastive_loss {

using namespace zss;
using namespace zss::clip;

namespace {
template <class T>
aligned_vector<T> unit_rows(index_t n, index_t d, std::uint64_t seed) {
  auto v = test::uniform_vector<T>(n * d, seed);
  for (index_t i = 0; i < n; ++i) {
    T s = 0;
    for (index_t j = 0; j < d; ++j) s += v[i * d + j] * v[i * d + j];
    for (index_t j = 0; j < d; ++j) v[i * d + j] /= std::sqrt(s);
  }
  return v;
}
}  // namespace

TEST_CASE_TEMPLATE("symmetric InfoNCE matches the plain loop, with and without queues", T, float,
                   double) {
  const index_t B = 5, D = 7;
  const auto I = unit_rows<T>(B, D, 1), Tx = unit_rows<T>(B, D, 2), Qt = unit_rows<T>(3, D, 3),
             Qi = unit_rows<T>(4, D, 4);
  for (index_t mt : {0, 3})
    for (index_t mi : {0, 4}) {
      CAPTURE(mt);
      CAPTURE(mi);
      contrastive_cache<T> cache;
      T loss{};
      const T theta = T(std::log(1 / 0.07));
      contrastive_forward<T>(loss, cache, {I.data(), B, D}, {Tx.data(), B, D}, theta,
                             {Qt.data(), mt, D}, {Qi.data(), mi, D});
      const double ref =
          test::ref::clip_loss(test::to_double(I), test::to_double(Tx), B, D, double(theta),
                               test::to_double(Qt), mt, test::to_double(Qi), mi);
      CHECK(double(loss) == doctest::Approx(ref).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-12));
    }
}

TEST_CASE("symmetric InfoNCE: matching pairs give low loss and full accuracy") {
  const index_t B = 6, D = 8;
  auto I = unit_rows<double>(B, D, 5);
  contrastive_cache<double> cache;
  double aligned = 0, shuffled = 0;
  contrastive_forward<double>(aligned, cache, {I.data(), B, D}, {I.data(), B, D}, std::log(100.0));
  CHECK(cache.accuracy_it == 1.0);
  CHECK(cache.accuracy_ti == 1.0);
  auto T2 = I;
  std::rotate(T2.begin(), T2.begin() + D, T2.end());  // pair i with caption i + 1
  contrastive_forward<double>(shuffled, cache, {I.data(), B, D}, {T2.data(), B, D},
                              std::log(100.0));
  CHECK(cache.accuracy_it == 0.0);
  CHECK(aligned < shuffled);
  CHECK(aligned < 0.5 * std::log(double(B)));  // far below the uniform guess log B
}

TEST_CASE("symmetric InfoNCE backward equals finite differences (double, rel. err < 1e-6)") {
  const index_t B = 4, D = 5;
  auto I = unit_rows<double>(B, D, 6), Tx = unit_rows<double>(B, D, 7);
  const auto Qt = unit_rows<double>(2, D, 8), Qi = unit_rows<double>(3, D, 9);
  for (index_t mt : {0, 2})
    for (index_t mi : {0, 3})
      for (double theta : {std::log(1 / 0.07), 0.0, std::log(100.0)}) {
        CAPTURE(mt);
        CAPTURE(mi);
        CAPTURE(theta);
        double th = theta;
        const double dloss = 0.7;
        auto loss = [&] {
          contrastive_cache<double> c;
          double l = 0;
          contrastive_forward<double>(l, c, {I.data(), B, D}, {Tx.data(), B, D}, th,
                                      {Qt.data(), mt, D}, {Qi.data(), mi, D});
          return dloss * l;
        };
        contrastive_cache<double> cache;
        double l = 0;
        contrastive_forward<double>(l, cache, {I.data(), B, D}, {Tx.data(), B, D}, th,
                                    {Qt.data(), mt, D}, {Qi.data(), mi, D});
        std::vector<double> dI(B * D, 1.0), dT(B * D, -1.0);  // backward must add
        double dth = 2.0;
        contrastive_backward<double>({dI.data(), B, D}, {dT.data(), B, D}, dth, dloss, cache,
                                     {I.data(), B, D}, {Tx.data(), B, D}, th, {Qt.data(), mt, D},
                                     {Qi.data(), mi, D});
        for (auto& v : dI) v -= 1.0;
        for (auto& v : dT) v += 1.0;
        dth -= 2.0;
        CHECK(test::relative_error(dI, test::numeric_gradient(loss, I.data(), I.size())) < 1e-6);
        CHECK(test::relative_error(dT, test::numeric_gradient(loss, Tx.data(), Tx.size())) < 1e-6);
        const auto nth = test::numeric_gradient(loss, &th, 1);
        CHECK(test::relative_error(std::vector<double>{dth}, nth) < 1e-6);
      }
}

TEST_CASE("symmetric InfoNCE refuses mismatched shapes") {
  const auto I = unit_rows<float>(3, 4, 1), Tx = unit_rows<float>(3, 4, 2);
  contrastive_cache<float> cache;
  float loss = 0;
  CHECK_THROWS_AS(contrastive_forward<float>(loss, cache, {I.data(), 3, 4}, {Tx.data(), 2, 4}, 1.f),
                  std::invalid_argument);
  CHECK_THROWS_WITH_AS(contrastive_forward<float>(loss, cache, {I.data(), 3, 4}, {Tx.data(), 3, 4},
                                                  1.f, {Tx.data(), 2, 3}),
                       doctest::Contains("text queue"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      contrastive_forward<float>(loss, cache, {I.data(), 0, 4}, {Tx.data(), 0, 4}, 1.f),
      doctest::Contains("no pairs"), std::invalid_argument);
}

}  // namespace test_clip_contrastive_loss
