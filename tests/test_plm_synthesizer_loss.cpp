// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/synthesizer_loss.hpp: L_syn (BCE and CE) against a plain loop, gradients
// against finite differences (alone and end to end through the synthesizer), edge cases, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"

namespace test_plm_synthesizer_loss {

using namespace zss;

namespace {
template <class T>
aligned_vector<T> unit_rows(index_t n, index_t d, std::uint64_t seed) {
  auto v = test::uniform_vector<T>(n * d, seed);
  for (index_t i = 0; i < n; ++i) normalize_row(v.data() + i * d, v.data() + i * d, d);
  return v;
}
const syn_loss_kind kinds[] = {syn_loss_kind::bce, syn_loss_kind::ce};
}  // namespace

TEST_CASE_TEMPLATE("L_syn forward matches the plain loop (BCE and CE, pseudo rows ignored)", T,
                   float, double) {
  const index_t n = 7, d = 12, k = 5;
  const auto Pi = unit_rows<T>(n, d, 1);
  const auto Text = test::uniform_vector<T>(k * d, 2, T(-2), T(2));  // not unit: normalised inside
  const std::vector<int> labels{0, -1, 4, 2, -1, 2, 1};
  for (auto kind : kinds)
    for (auto [tau, delta] : {std::pair{0.07, 0.0}, {0.5, 1.5}}) {
      CAPTURE(int(kind));
      CAPTURE(tau);
      syn_loss_options opt{kind, tau, delta};
      syn_loss_cache<T> cache;
      T loss = -1;
      syn_loss_forward<T>(loss, cache, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt);
      const double ref =
          test::ref::syn_loss(test::to_double(Pi), n, d, labels, test::to_double(Text), k, tau,
                              delta, kind == syn_loss_kind::ce);
      CHECK(double(loss) == doctest::Approx(ref).epsilon(sizeof(T) == 4 ? 2e-5 : 1e-12));
      CHECK(cache.seen == 5);
    }
}

TEST_CASE("L_syn backward equals finite differences (double, rel. err < 1e-6)") {
  const index_t n = 6, d = 9;
  for (index_t k : {1, 4}) {
    for (auto kind : kinds) {
      CAPTURE(k);
      CAPTURE(int(kind));
      auto Pi = test::uniform_vector<double>(n * d, 3);
      const auto Text = test::uniform_vector<double>(k * d, 4);
      std::vector<int> labels{0, -1, int(k) - 1, 0, -1, int(k / 2)};
      const syn_loss_options opt{kind, 0.2, 0.3};
      const double dloss = 1.7;
      auto loss = [&] {
        syn_loss_cache<double> c;
        double l = 0;
        syn_loss_forward<double>(l, c, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt);
        return dloss * l;
      };
      syn_loss_cache<double> cache;
      double l = 0;
      syn_loss_forward<double>(l, cache, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt);
      std::vector<double> dPi(n * d, 0.5);
      syn_loss_backward<double>({dPi.data(), n, d}, dloss, cache, {Pi.data(), n, d}, labels,
                                {Text.data(), k, d}, opt);
      for (auto& x : dPi) x -= 0.5;
      CHECK(test::relative_error(dPi, test::numeric_gradient(loss, Pi.data(), Pi.size())) < 1e-6);
      // Pseudo rows get nothing.
      for (index_t j = 0; j < d; ++j) CHECK(dPi[1 * d + j] == 0.0);
      // A single class under CE: the loss is 0 and so is the gradient.
      if (k == 1 && kind == syn_loss_kind::ce) {
        CHECK(l == doctest::Approx(0.0));
        for (double v : dPi) CHECK(v == doctest::Approx(0.0));
      }
    }
  }
}

TEST_CASE("L_syn: shards with the batch's seen-region count add up to the batch") {
  const index_t n = 7, d = 6, k = 3;
  const auto Pi = unit_rows<double>(n, d, 11);
  const auto Text = test::uniform_vector<double>(k * d, 12);
  const std::vector<int> labels{0, -1, 2, 1, -1, -1, 1};  // 4 seen regions
  for (auto kind : kinds) {
    CAPTURE(int(kind));
    const syn_loss_options opt{kind, 0.3, 0.5};
    syn_loss_cache<double> cache;
    double full = 0;
    syn_loss_forward<double>(full, cache, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt);
    std::vector<double> dPi(n * d, 0.0), dPis(n * d, 0.0);
    syn_loss_backward<double>({dPi.data(), n, d}, 0.6, cache, {Pi.data(), n, d}, labels,
                              {Text.data(), k, d}, opt);
    double sum = 0;
    for (const auto& [r0, m] : {std::pair<index_t, index_t>{0, 3}, {3, 3}, {6, 1}}) {
      const std::span<const int> ls(labels.data() + r0, m);
      syn_loss_cache<double> c;
      double l = 0;
      syn_loss_forward<double>(l, c, {Pi.data() + r0 * d, m, d}, ls, {Text.data(), k, d}, opt, 4);
      syn_loss_backward<double>({dPis.data() + r0 * d, m, d}, 0.6, c, {Pi.data() + r0 * d, m, d},
                                ls, {Text.data(), k, d}, opt);
      sum += l;
    }
    CHECK(sum == doctest::Approx(full).epsilon(1e-14));
    CHECK(test::relative_error(dPis, dPi) < 1e-14);
    double l = 0;
    CHECK_THROWS_WITH_AS(
        syn_loss_forward<double>(l, cache, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt, 3),
        doctest::Contains("fewer than this shard's 4"), std::invalid_argument);
  }
}

TEST_CASE_TEMPLATE("L_syn: no seen region gives 0 and no gradient; huge logits stay finite", T,
                   float, double) {
  const index_t n = 3, d = 4, k = 2;
  const auto Pi = unit_rows<T>(n, d, 5);
  const auto Text = test::uniform_vector<T>(k * d, 6);
  const std::vector<int> pseudo{-1, -1, -1};
  for (auto kind : kinds) {
    syn_loss_cache<T> cache;
    T loss = 5;
    syn_loss_forward<T>(loss, cache, {Pi.data(), n, d}, pseudo, {Text.data(), k, d}, {kind});
    CHECK(loss == T(0));
    std::vector<T> dPi(n * d, T(0));
    syn_loss_backward<T>({dPi.data(), n, d}, T(1), cache, {Pi.data(), n, d}, pseudo,
                         {Text.data(), k, d}, {kind});
    for (T v : dPi) CHECK(v == T(0));
    // τ tiny: logits ~ ±1e6 / ... no overflow, no NaN.
    const std::vector<int> labels{0, 1, 0};
    const syn_loss_options opt{kind, 1e-6, 0.0};
    syn_loss_forward<T>(loss, cache, {Pi.data(), n, d}, labels, {Text.data(), k, d}, opt);
    CHECK(std::isfinite(loss));
    syn_loss_backward<T>({dPi.data(), n, d}, T(1), cache, {Pi.data(), n, d}, labels,
                         {Text.data(), k, d}, opt);
    for (T v : dPi) CHECK(std::isfinite(v));
  }
  // A zero text embedding stays finite (ε in the normalisation).
  std::vector<T> zero_text(k * d, T(0));
  syn_loss_cache<T> cache;
  T loss = 0;
  syn_loss_forward<T>(loss, cache, {Pi.data(), n, d}, std::vector<int>{0, 1, 1},
                      {zero_text.data(), k, d});
  CHECK(loss == doctest::Approx(std::log(2.0)).epsilon(1e-6));  // all logits 0
}

TEST_CASE("L_syn rejects bad labels, no classes, bad τ and mismatched widths") {
  const index_t n = 2, d = 3, k = 2;
  std::vector<float> Pi(n * d, 1.0f), Text(k * d, 1.0f), Text4(k * 4, 1.0f);
  syn_loss_cache<float> cache;
  float loss = 0;
  CHECK_THROWS_WITH_AS(syn_loss_forward<float>(loss, cache, {Pi.data(), n, d},
                                               std::vector<int>{0, 2}, {Text.data(), k, d}),
                       doctest::Contains("label 2 of region 1 is outside [-1, 2)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(syn_loss_forward<float>(loss, cache, {Pi.data(), n, d},
                                               std::vector<int>{0, 0}, {Text.data(), 0, d}),
                       doctest::Contains("no seen classes"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      syn_loss_forward<float>(loss, cache, {Pi.data(), n, d}, std::vector<int>{0, 0},
                              {Text.data(), k, d}, {syn_loss_kind::bce, 0.0}),
      doctest::Contains("tau"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(syn_loss_forward<float>(loss, cache, {Pi.data(), n, d},
                                               std::vector<int>{0, 0}, {Text4.data(), k, 4}),
                       doctest::Contains("(2, 4)"), std::invalid_argument);
  CHECK_THROWS_AS(syn_loss_forward<float>(loss, cache, {Pi.data(), n, d}, std::vector<int>{0},
                                          {Text.data(), k, d}),
                  std::invalid_argument);
}

TEST_CASE("L_syn end to end through the synthesizer equals finite differences (BCE and CE)") {
  eigen_single_thread_guard guard;
  const index_t d = 6, h = 8, k = 3;
  const std::vector<index_t> off{0, 3, 4, 6};
  const index_t n = off.back(), images = off.size() - 1;
  param_buffer<double> buf;
  const auto ids = declare_synthesizer_params(buf, d, h);
  buf.allocate();
  init_synthesizer_params(buf, ids, 21);
  auto P = test::uniform_vector<double>(n * d, 22),
       C = test::uniform_vector<double>(images * d, 23),
       U = test::uniform_vector<double>(n * d, 24), Text = test::uniform_vector<double>(k * d, 25);
  const std::vector<int> labels{0, 2, -1, 1, -1, 2};
  for (auto kind : kinds) {
    CAPTURE(int(kind));
    const syn_loss_options lopt{kind, 0.1, 0.2};
    auto loss = [&] {
      synthesizer_cache<double> sc;
      syn_loss_cache<double> lc;
      std::vector<double> Pi(n * d);
      synthesizer_forward<double>({Pi.data(), n, d}, sc, {P.data(), n, d}, {C.data(), images, d},
                                  {U.data(), n, d}, off, ids.params(buf));
      double l = 0;
      syn_loss_forward<double>(l, lc, {Pi.data(), n, d}, labels, {Text.data(), k, d}, lopt);
      return l;
    };
    synthesizer_cache<double> sc;
    syn_loss_cache<double> lc;
    std::vector<double> Pi(n * d), dPi(n * d, 0.0), dP(n * d, 0.0);
    synthesizer_forward<double>({Pi.data(), n, d}, sc, {P.data(), n, d}, {C.data(), images, d},
                                {U.data(), n, d}, off, ids.params(buf));
    double l = 0;
    syn_loss_forward<double>(l, lc, {Pi.data(), n, d}, labels, {Text.data(), k, d}, lopt);
    CHECK(l == doctest::Approx(loss()).epsilon(1e-14));
    syn_loss_backward<double>({dPi.data(), n, d}, 1.0, lc, {Pi.data(), n, d}, labels,
                              {Text.data(), k, d}, lopt);
    buf.zero_grad();
    synthesizer_backward<double>({dP.data(), n, d}, ids.grads(buf), {dPi.data(), n, d}, sc,
                                 {Pi.data(), n, d}, {P.data(), n, d}, {C.data(), images, d},
                                 {U.data(), n, d}, off, ids.params(buf));
    CHECK(test::relative_error(dP, test::numeric_gradient(loss, P.data(), P.size())) < 1e-6);
    std::vector<double> grads(buf.grads(), buf.grads() + buf.size());
    CHECK(test::relative_error(grads, test::numeric_gradient(loss, buf.values(), buf.size())) <
          1e-6);
  }
}

}  // namespace test_plm_synthesizer_loss
