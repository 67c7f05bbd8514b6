// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/focal_dice.hpp: NEL forward against the reference, gradients against
// finite differences, edge cases, threads, float vs double, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/loss/focal_dice.hpp"

namespace test_loss_focal_dice {

using namespace zss;

namespace {

/// Random logits for a layout: N × Kmax, entries ≥ K_b hold garbage that must not be read.
template <class T>
tensor<T, 2> random_logits(const test::class_problem<double>& p, std::uint64_t seed,
                           double scale = 3.0) {
  const auto sets = p.sets();
  tensor<T, 2> S =
      xt::cast<T>(scale * test::normal_matrix<double>(p.X.shape()[0], sets.max_classes(), seed));
  for (index_t b = 0; b < sets.images(); ++b)
    for (index_t i = p.roff[b]; i < p.roff[b + 1]; ++i)
      for (index_t k = sets.classes(b); k < sets.max_classes(); ++k) S(i, k) = T(1e30);
  return S;
}

template <class T>
test::ref::dmat ragged(const tensor<T, 2>& S, const class_sets<double>& sets) {
  test::ref::dmat r;
  for (index_t b = 0; b < sets.images(); ++b)
    for (index_t i = sets.row_offsets[b]; i < sets.row_offsets[b + 1]; ++i) {
      r.emplace_back();
      for (index_t k = 0; k < sets.classes(b); ++k) r.back().push_back(double(S(i, k)));
    }
  return r;
}

template <class T>
class_sets<T> sets_as(const test::class_problem<double>& p) {
  // Only offsets and class counts are read; the weight views stay empty with the right row counts.
  return {std::span<const index_t>(p.roff), matrix_ref<const T>(nullptr, p.Ts.shape()[0], p.D),
          matrix_ref<const T>(nullptr, p.Ps.shape()[0], p.D), std::span<const index_t>(p.poff)};
}

template <class T>
double reference(const tensor<T, 2>& S, const test::class_problem<double>& p,
                 const focal_dice_options& q) {
  return test::ref::focal_dice(ragged(S, p.sets()), p.labels, p.roff, double(q.alpha),
                               double(q.gamma), double(q.dice_smooth), double(q.focal_weight),
                               double(q.dice_weight));
}

template <class T>
T our(const tensor<T, 2>& S, const test::class_problem<double>& p, const focal_dice_options& q) {
  focal_dice_cache<T> cache;
  T loss = -1;
  focal_dice_forward(loss, cache, as_matrix(S), std::span<const int>(p.labels), sets_as<T>(p), q);
  return loss;
}

}  // namespace

TEST_CASE_TEMPLATE("focal_dice forward matches the reference", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  auto p = test::make_class_problem(1, {6, 0, 9, 4}, {2, 1, 0, 3}, 3, 2, 0.25);
  auto S = random_logits<T>(p, 2);
  for (double gamma : {2.0, 0.0, 1.5}) {
    focal_dice_options q;
    q.gamma = T(gamma);
    q.focal_weight = T(2.5);
    q.dice_weight = T(0.7);
    CAPTURE(gamma);
    CHECK(double(our(S, p, q)) == doctest::Approx(reference(S, p, q)).epsilon(tol));
  }
}

TEST_CASE("focal_dice gradients equal central finite differences (double, rel. err < 1e-6)") {
  focal_dice_options q;
  q.focal_weight = 1.7;
  q.dice_weight = 0.6;
  q.threads = 1;
  auto check = [&](const test::class_problem<double>& p, tensor<double, 2> S) {
    focal_dice_cache<double> cache;
    double loss = 0;
    focal_dice_forward(loss, cache, as_matrix(std::as_const(S)), std::span<const int>(p.labels),
                       sets_as<double>(p), q);
    tensor<double, 2> dS = xt::zeros<double>(S.shape());
    focal_dice_backward(as_matrix(dS), 1.0, cache, as_matrix(std::as_const(S)),
                        std::span<const int>(p.labels), sets_as<double>(p), q);
    auto g = test::numeric_gradient([&] { return our(S, p, q); }, S.data(), S.size());
    // Entries ≥ K_b are not logits: their numeric gradient is 0 and ours is untouched (0).
    CHECK(test::relative_error(dS, g) < 1e-6);
  };
  SUBCASE("random shapes, ignored rows, pseudo classes") {
    auto p = test::make_class_problem(3, {5, 3, 0, 6}, {1, 0, 2, 3}, 2, 2, 0.3);
    check(p, random_logits<double>(p, 4));
  }
  SUBCASE("γ = 1.5 and a single class") {
    q.gamma = 1.5;
    auto p = test::make_class_problem(5, {7}, {}, 1, 2, 0.2);
    check(p, random_logits<double>(p, 6));
  }
  SUBCASE("ties: equal logits") {
    auto p = test::make_class_problem(7, {4, 4}, {1, 1}, 2, 2, 0.0);
    auto S = random_logits<double>(p, 8);
    for (index_t i = 0; i < 8; ++i) S(i, 0) = S(i, 1) = 0.25;
    check(p, S);
  }
  SUBCASE("moderately large logits") {
    auto p = test::make_class_problem(9, {5, 4}, {2, 1}, 2, 2, 0.0);
    check(p, random_logits<double>(p, 10, 12.0));
  }
}

TEST_CASE("focal_dice: shards with the batch's counts add up to the batch (data parallelism)") {
  // Five images (one without a labelled row) cut into shards as ranks see them: with the batch's
  // |V| and dice-term count each shard's loss and dS are its part of the batch's.
  auto p = test::make_class_problem(13, {5, 3, 4, 6, 2}, {1, 0, 2, 3, 1}, 2, 2, 0.3);
  for (index_t i = 8; i < 12; ++i) p.labels[i] = -1;  // image 2 has no labelled row
  const auto S = random_logits<double>(p, 14);
  focal_dice_options q;
  q.focal_weight = 1.3;
  q.dice_weight = 0.8;
  focal_dice_cache<double> full_cache;
  double full = 0;
  focal_dice_forward(full, full_cache, as_matrix(S), std::span<const int>(p.labels),
                     sets_as<double>(p), q);
  tensor<double, 2> dS_full = xt::zeros<double>(S.shape());
  focal_dice_backward(as_matrix(dS_full), 0.9, full_cache, as_matrix(S),
                      std::span<const int>(p.labels), sets_as<double>(p), q);
  const auto batch = focal_dice_count(std::span<const int>(p.labels), sets_as<double>(p));
  CHECK(batch.valid_rows == full_cache.valid);
  CHECK(batch.dice_terms == full_cache.dice_terms);
  for (const auto& cut : std::vector<std::vector<index_t>>{{0, 2, 5}, {0, 3, 4, 5}}) {
    double sum = 0;
    focal_dice_counts counted;
    for (index_t k = 0; k + 1 < cut.size(); ++k) {
      const auto sh = test::shard_of(p, cut[k], cut[k + 1]);
      const index_t r0 = p.roff[cut[k]], rows = sh.labels.size();
      const index_t Kc = sets_as<double>(sh).max_classes();
      tensor<double, 2> Ss = tensor<double, 2>::from_shape({rows, Kc});
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < Kc; ++j) Ss(i, j) = S(r0 + i, j);
      const auto c = focal_dice_count(std::span<const int>(sh.labels), sets_as<double>(sh));
      counted.valid_rows += c.valid_rows, counted.dice_terms += c.dice_terms;
      focal_dice_cache<double> cache;
      double loss = 0;
      focal_dice_forward(loss, cache, as_matrix(Ss), std::span<const int>(sh.labels),
                         sets_as<double>(sh), q, batch);
      tensor<double, 2> dS = xt::zeros<double>(Ss.shape());
      focal_dice_backward(as_matrix(dS), 0.9, cache, as_matrix(Ss), std::span<const int>(sh.labels),
                          sets_as<double>(sh), q);
      sum += loss;
      for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < Kc; ++j)
          CHECK(dS(i, j) == doctest::Approx(dS_full(r0 + i, j)).epsilon(1e-13));
    }
    CHECK(counted.valid_rows == batch.valid_rows);
    CHECK(counted.dice_terms == batch.dice_terms);
    CHECK(sum == doctest::Approx(full).epsilon(1e-13));
  }
  focal_dice_cache<double> cache;
  double loss = 0;
  CHECK_THROWS_WITH_AS(focal_dice_forward(loss, cache, as_matrix(S), std::span<const int>(p.labels),
                                          sets_as<double>(p), q, focal_dice_counts{1, 1}),
                       doctest::Contains("below this shard's"), std::invalid_argument);
}

TEST_CASE_TEMPLATE("focal_dice edge cases", T, float, double) {
  SUBCASE("all rows ignored: loss 0, no gradient, no NaN") {
    auto p = test::make_class_problem(11, {4, 3}, {1, 1}, 2, 2, 1.0);
    auto S = random_logits<T>(p, 12);
    focal_dice_cache<T> cache;
    T loss = -1;
    focal_dice_forward(loss, cache, as_matrix(std::as_const(S)), std::span<const int>(p.labels),
                       sets_as<T>(p), focal_dice_options{});
    CHECK(loss == T(0));
    tensor<T, 2> dS = xt::zeros<T>(S.shape());
    focal_dice_backward(as_matrix(dS), T(1), cache, as_matrix(std::as_const(S)),
                        std::span<const int>(p.labels), sets_as<T>(p), focal_dice_options{});
    for (T v : dS) CHECK(v == T(0));
  }
  SUBCASE("huge logits: finite loss and gradient, matching the reference") {
    auto p = test::make_class_problem(13, {5, 4}, {1, 2}, 2, 2, 0.1);
    auto S = random_logits<T>(p, 14, 1e4);
    focal_dice_options q;
    focal_dice_cache<T> cache;
    T loss = 0;
    focal_dice_forward(loss, cache, as_matrix(std::as_const(S)), std::span<const int>(p.labels),
                       sets_as<T>(p), q);
    CHECK(std::isfinite(loss));
    CHECK(double(loss) == doctest::Approx(reference(S, p, q)).epsilon(1e-5));
    tensor<T, 2> dS = xt::zeros<T>(S.shape());
    focal_dice_backward(as_matrix(dS), T(1), cache, as_matrix(std::as_const(S)),
                        std::span<const int>(p.labels), sets_as<T>(p), q);
    CHECK(test::all_finite(dS));
  }
}

TEST_CASE_TEMPLATE("focal_dice: threads and precision", T, float, double) {
  auto p = test::make_class_problem(21, {300, 41, 0, 250}, {3, 0, 2, 5}, 6, 2, 0.1);
  auto S = random_logits<T>(p, 22);
  std::vector<tensor<T, 2>> grads;
  std::vector<T> losses;
  for (int threads : {1, 2}) {
    focal_dice_options q;
    q.threads = threads;
    focal_dice_cache<T> cache;
    T loss = 0;
    focal_dice_forward(loss, cache, as_matrix(std::as_const(S)), std::span<const int>(p.labels),
                       sets_as<T>(p), q);
    tensor<T, 2> dS = xt::zeros<T>(S.shape());
    focal_dice_backward(as_matrix(dS), T(1), cache, as_matrix(std::as_const(S)),
                        std::span<const int>(p.labels), sets_as<T>(p), q);
    losses.push_back(loss);
    grads.push_back(dS);
  }
  CHECK(losses[0] == losses[1]);
  CHECK(grads[0] == grads[1]);
  if constexpr (std::is_same_v<T, float>) {
    tensor<double, 2> Sd = xt::cast<double>(S);
    focal_dice_cache<double> cache;
    double loss = 0;
    focal_dice_forward(loss, cache, as_matrix(std::as_const(Sd)), std::span<const int>(p.labels),
                       sets_as<double>(p), focal_dice_options{});
    tensor<double, 2> dS = xt::zeros<double>(S.shape());
    focal_dice_backward(as_matrix(dS), 1.0, cache, as_matrix(std::as_const(Sd)),
                        std::span<const int>(p.labels), sets_as<double>(p), focal_dice_options{});
    CHECK(double(losses[0]) == doctest::Approx(loss).epsilon(1e-5));
    CHECK(test::relative_error(grads[0], dS) < 1e-5);
  }
}

TEST_CASE("focal_dice rejects bad input") {
  auto p = test::make_class_problem(31, {3, 2}, {1, 0}, 2, 2, 0.0);
  auto S = random_logits<double>(p, 32);
  focal_dice_cache<double> cache;
  double loss = 0;
  auto run = [&](const std::vector<int>& y, const tensor<double, 2>& s,
                 const focal_dice_options& q) {
    focal_dice_forward(loss, cache, as_matrix(s), std::span<const int>(y), sets_as<double>(p), q);
  };
  auto y = p.labels;
  y[4] = 2;  // image 1 has 2 classes
  CHECK_THROWS_WITH_AS(run(y, S, {}), doctest::Contains("label 2 of row 4"), std::invalid_argument);
  tensor<double, 2> narrow = xt::zeros<double>({5, 2});
  CHECK_THROWS_WITH_AS(run(p.labels, narrow, {}), doctest::Contains("S has shape (5, 2)"),
                       std::invalid_argument);
  focal_dice_options q;
  q.gamma = -1;
  CHECK_THROWS_AS(run(p.labels, S, q), std::invalid_argument);
}

}  // namespace test_loss_focal_dice
