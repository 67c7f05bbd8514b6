// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/cls_bank.hpp: the FIFO bank of normalised CLS tokens.
#include <doctest/doctest.h>

#include <stdexcept>
#include <utility>
#include <vector>

#include "zss/loss/cls_bank.hpp"

namespace test_loss_cls_bank {

using namespace zss;

TEST_CASE_TEMPLATE("cls_bank is a FIFO of normalised tokens with a fixed width", T, float, double) {
  cls_bank<T> bank(3, 2);
  CHECK(bank.empty());
  CHECK(bank.capacity() == 3);
  tensor<T, 2> a = {{3, 4}, {0, 2}};
  bank.push(as_matrix(std::as_const(a)));
  CHECK(bank.size() == 2);
  CHECK(bank.row(0)[0] == doctest::Approx(0.6));
  CHECK(bank.row(1)[1] == doctest::Approx(1.0));
  tensor<T, 2> b = {{-1, 0}, {0, -5}};
  bank.push(as_matrix(std::as_const(b)));  // 4 pushed into 3 slots: the oldest (3,4) is gone
  CHECK(bank.full());
  CHECK(bank.size() == 3);
  CHECK(bank.row(0)[1] == doctest::Approx(1.0));   // (0, 2)
  CHECK(bank.row(1)[0] == doctest::Approx(-1.0));  // (−1, 0)
  CHECK(bank.row(2)[1] == doctest::Approx(-1.0));  // (0, −5)
  std::vector<T> out(6);
  bank.copy_to(out.data());
  CHECK(out[2] == doctest::Approx(-1.0));
  // More rows than the capacity in one push: the last three stay, in order.
  tensor<T, 2> c = {{1, 0}, {2, 0}, {0, 3}, {0, 4}};
  bank.push(as_matrix(std::as_const(c)));
  CHECK(bank.row(0)[0] == doctest::Approx(1.0));
  CHECK(bank.row(1)[1] == doctest::Approx(1.0));
  CHECK(bank.row(2)[1] == doctest::Approx(1.0));
  // Wrong width.
  tensor<T, 2> w = {{1, 2, 3}};
  CHECK_THROWS_WITH_AS(bank.push(as_matrix(std::as_const(w))), doctest::Contains("width 3"),
                       std::invalid_argument);
  // Capacity 0: stays empty.
  cls_bank<T> off(0, 2);
  off.push(as_matrix(std::as_const(a)));
  CHECK(off.empty());
  bank.clear();
  CHECK(bank.empty());
}

}  // namespace test_loss_cls_bank
