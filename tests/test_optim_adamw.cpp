// SPDX-License-Identifier: Apache-2.0
// Tests for zss/optim/adamw.hpp against torch.optim.AdamW's updates (values from PyTorch 1.13 in
// float64, lr 0.1, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01) and the hand-derived first
// step.
#include <doctest/doctest.h>

#include <vector>

#include "zss/optim/adamw.hpp"

namespace test_optim_adamw {

using namespace zss;

namespace {
const double p0[5] = {1.0, -2.0, 0.5, 0.0, 3.0};
const double grads[3][5] = {
    {0.5, -1.0, 0.25, 0.0, 2.0}, {0.1, 0.3, -0.2, 0.5, -1.0}, {-0.4, 0.2, 0.0, 1.0, 0.5}};
const double torch_adamw[3][5] = {
    {0.899000002, -1.898000001, 0.39950000399999985, 0.0, 2.8970000005},
    {0.8177969063826518, -1.8533171424282264, 0.3932879995226317, -0.07441368025248775,
     2.8674692967019313},
    {0.8076091694498291, -1.8310127735702886, 0.38840162876341394, -0.15719652815571505,
     2.8305589128417403}};
}  // namespace

TEST_CASE_TEMPLATE("AdamW matches torch.optim.AdamW for three steps (vector body and scalar tail)",
                   T, float, double) {
  // Repeat the 5 values so that both the SIMD body and the scalar tail run (n = 5·7 = 35).
  const index_t reps = 7, n = 5 * reps;
  std::vector<T> p(n), g(n);
  for (index_t i = 0; i < n; ++i) p[i] = T(p0[i % 5]);
  adamw_state<T> st;
  adamw_options o;
  o.lr = T(0.1);
  for (int s = 0; s < 3; ++s) {
    for (index_t i = 0; i < n; ++i) g[i] = T(grads[s][i % 5]);
    adamw_step(std::span<T>(p), std::span<const T>(g), st, o);
    CHECK(st.step == std::uint64_t(s + 1));
    for (index_t i = 0; i < n; ++i)
      CHECK(
          double(p[i]) ==
          doctest::Approx(torch_adamw[s][i % 5]).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-12));
  }
  // First step by hand: m̂ = g, v̂ = g², update = lr·sign(g); decay (1 − lr·λ) first.
  std::vector<T> q = {T(2)}, h = {T(-3)};
  adamw_state<T> s1;
  adamw_step(std::span<T>(q), std::span<const T>(h), s1, o);
  CHECK(double(q[0]) == doctest::Approx(2 * (1 - 0.1 * 0.01) + 0.1).epsilon(1e-6));
}

TEST_CASE("AdamW rejects mismatched sizes and bad options") {
  std::vector<float> p(4), g(3);
  adamw_state<float> st;
  adamw_options o;
  CHECK_THROWS_WITH_AS(adamw_step(std::span<float>(p), std::span<const float>(g), st, o),
                       doctest::Contains("grads size (3) must equal params size (4)"),
                       std::invalid_argument);
  std::vector<float> g4(4);
  adamw_state<float> wrong(5);
  CHECK_THROWS_WITH_AS(adamw_step(std::span<float>(p), std::span<const float>(g4), wrong, o),
                       doctest::Contains("state.m size (5)"), std::invalid_argument);
  o.beta2 = 1.0f;
  CHECK_THROWS_AS(adamw_step(std::span<float>(p), std::span<const float>(g4), st, o),
                  std::invalid_argument);
}

}  // namespace test_optim_adamw
