// SPDX-License-Identifier: Apache-2.0
// Tests for zss/optim/sgd.hpp against torch.optim.SGD's updates (PyTorch 1.13, float64, lr 0.1).
#include <doctest/doctest.h>

#include <vector>

#include "zss/optim/sgd.hpp"

namespace test_optim_sgd {

using namespace zss;

namespace {
const double sgd_p0[5] = {1.0, -2.0, 0.5, 0.0, 3.0};
const double sgd_grads[3][5] = {
    {0.5, -1.0, 0.25, 0.0, 2.0}, {0.1, 0.3, -0.2, 0.5, -1.0}, {-0.4, 0.2, 0.0, 1.0, 0.5}};

template <class T>
void run_sgd(const sgd_options& o, const double (&expect)[3][5]) {
  std::vector<T> p(sgd_p0, sgd_p0 + 5), g(5);
  sgd_state<T> st;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 5; ++i) g[std::size_t(i)] = T(sgd_grads[s][i]);
    sgd_step(std::span<T>(p), std::span<const T>(g), st, o);
    CAPTURE(s);
    for (int i = 0; i < 5; ++i)
      CHECK(double(p[std::size_t(i)]) ==
            doctest::Approx(expect[s][i]).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-13));
  }
  CHECK(st.step == 3);
}
}  // namespace

TEST_CASE_TEMPLATE(
    "SGD matches torch.optim.SGD: momentum + weight decay, Nesterov, dampening, plain", T, float,
    double) {
  sgd_options o;
  o.lr = T(0.1);
  SUBCASE("momentum 0.9, weight_decay 0.01") {
    o.momentum = T(0.9);
    o.weight_decay = T(0.01);
    const double e[3][5] = {{0.949, -1.898, 0.4745, 0.0, 2.797},
                            {0.8921509999999999, -1.8343019999999999, 0.4710755, -0.05, 2.711503},
                            {0.880094749, -1.795139498, 0.4675223745, -0.19495, 2.581844197}};
    run_sgd<T>(o, e);
  }
  SUBCASE("Nesterov momentum 0.9") {
    o.momentum = T(0.9);
    o.nesterov = true;
    const double e[3][5] = {{0.905, -1.81, 0.4525, 0.0, 2.62},
                            {0.8455, -1.786, 0.47025, -0.095, 2.648},
                            {0.87695, -1.7754, 0.468225, -0.3255, 2.4882}};
    run_sgd<T>(o, e);
  }
  SUBCASE("momentum 0.5, dampening 0.3") {
    o.momentum = T(0.5);
    o.dampening = T(0.3);
    const double e[3][5] = {{0.95, -1.9, 0.475, 0.0, 2.8},
                            {0.918, -1.871, 0.4765, -0.035, 2.77},
                            {0.93, -1.8705, 0.47725, -0.1225, 2.72}};
    run_sgd<T>(o, e);
  }
  SUBCASE("no momentum, weight_decay 0.1") {
    o.momentum = T(0);
    o.weight_decay = T(0.1);
    const double e[3][5] = {{0.94, -1.88, 0.47, 0.0, 2.77},
                            {0.9206, -1.8912, 0.4853, -0.05, 2.8423},
                            {0.951394, -1.892288, 0.480447, -0.1495, 2.763877}};
    run_sgd<T>(o, e);
  }
}

TEST_CASE("SGD rejects bad options and sizes") {
  std::vector<double> p(3), g(3), g2(2);
  sgd_state<double> st;
  sgd_options o;
  CHECK_THROWS_AS(sgd_step(std::span<double>(p), std::span<const double>(g2), st, o),
                  std::invalid_argument);
  o.nesterov = true;
  o.dampening = 0.1;
  CHECK_THROWS_WITH_AS(sgd_step(std::span<double>(p), std::span<const double>(g), st, o),
                       doctest::Contains("nesterov"), std::invalid_argument);
}

}  // namespace test_optim_sgd
