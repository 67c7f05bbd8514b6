// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/parallel.hpp: static partition, ordered reductions, exceptions.
#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "support/random_data.hpp"
#include "zss/core/parallel.hpp"

namespace test_core_parallel {

using namespace zss;

TEST_CASE("resolve_threads and static_chunk") {
  CHECK(resolve_threads(3) == 3);
  CHECK(resolve_threads(0) >= 1);
  CHECK_THROWS_AS(resolve_threads(-1), std::invalid_argument);
  // The chunks of every thread tile [0, n) in order.
  for (index_t n : {0, 1, 5, 17}) {
    for (int t = 1; t <= 4; ++t) {
      index_t next = 0;
      for (int i = 0; i < t; ++i) {
        auto [b, e] = static_chunk(n, t, i);
        CHECK(b == next);
        CHECK(e >= b);
        next = e;
      }
      CHECK(next == n);
    }
  }
}

TEST_CASE("parallel_for visits every index once and rethrows") {
  for (int threads : {1, 2, 3}) {
    std::vector<int> hits(101, 0);
    parallel_for(101, threads, [&](index_t i, int) { hits[i] += 1; });
    for (int h : hits) CHECK(h == 1);
  }
  CHECK_THROWS_WITH_AS(parallel_for(10, 2,
                                    [](index_t i, int) {
                                      if (i == 7) throw std::runtime_error("boom at 7");
                                    }),
                       "boom at 7", std::runtime_error);
}

TEST_CASE("parallel_for_ranges hands each slot its static_chunk range once, and rethrows") {
  for (int threads : {1, 2, 3, 5}) {
    for (index_t n : {index_t(1), index_t(2), index_t(7), index_t(101)}) {
      CAPTURE(threads);
      CAPTURE(n);
      std::vector<std::array<index_t, 3>> calls;  // (begin, end, slot)
      std::mutex m;
      parallel_for_ranges(n, threads, [&](index_t b, index_t e, int slot) {
        std::lock_guard<std::mutex> lock(m);
        calls.push_back({b, e, index_t(slot)});
      });
      const int used = threads == 1 || n <= 1 ? 1 : int(std::min<index_t>(n, threads));
      REQUIRE(calls.size() == std::size_t(used));
      std::sort(calls.begin(), calls.end(),
                [](const auto& x, const auto& y) { return x[2] < y[2]; });
      index_t next = 0;
      for (int slot = 0; slot < used; ++slot) {
        const auto want = static_chunk(n, used, slot);
        CHECK(calls[slot][2] == index_t(slot));
        CHECK(calls[slot][0] == want.begin);
        CHECK(calls[slot][1] == want.end);
        CHECK(calls[slot][0] == next);  // contiguous, in slot order, covering [0, n)
        next = calls[slot][1];
      }
      CHECK(next == n);
    }
  }
  CHECK_THROWS_WITH_AS(parallel_for_ranges(10, 2,
                                           [](index_t b, index_t, int) {
                                             if (b > 0) throw std::runtime_error("boom in slot 1");
                                           }),
                       "boom in slot 1", std::runtime_error);
}

TEST_CASE("parallel_for inside another parallel region still visits every index (nesting off)") {
  // The inner team has one thread when nesting is off; every slot's range must still run, each
  // exactly once, with slots < the requested count (per-slot buffers stay private).
  for (int inner : {0, 2, 3}) {
    std::vector<std::atomic<int>> hits(2 * 37);
    std::atomic<int> bad_slot{0}, teams{0};
#pragma omp parallel num_threads(2)
    {
      const int outer = omp_get_thread_num();
      ++teams;
      parallel_for(37, inner, [&](index_t i, int slot) {
        if (slot < 0 || slot >= resolve_threads(inner)) ++bad_slot;
        ++hits[std::size_t(outer) * 37 + i];
      });
    }
    CAPTURE(inner);
    CHECK(bad_slot == 0);
    for (int t = 0; t < teams; ++t)
      for (index_t i = 0; i < 37; ++i) CHECK(hits[std::size_t(t) * 37 + i] == 1);
  }
}

TEST_CASE_TEMPLATE("parallel_reduce is bitwise identical for 1 and 2 threads", T, float, double) {
  auto x = test::uniform_vector<T>(10007, 42);
  auto sum = [&](int threads) {
    return parallel_reduce(x.size(), 256, threads, T(0), [&](index_t b, index_t e) {
      T s = 0;
      for (index_t i = b; i < e; ++i) s += x[i] * x[i];
      return s;
    });
  };
  const T one = sum(1), two = sum(2), three = sum(3);
  CHECK(one == two);
  CHECK(one == three);
  T ref = 0;
  for (auto v : x) ref += v * v;
  CHECK(double(one) == doctest::Approx(double(ref)).epsilon(1e-4));
}

TEST_CASE_TEMPLATE("per_thread buffers reduce in thread order", T, float, double) {
  for (int threads : {1, 2}) {
    per_thread<T> acc(threads, 4);
    CHECK(acc.threads() == threads);
    parallel_for(100, threads, [&](index_t i, int t) { acc[t][i % 4] += T(i); });
    std::vector<T> out(4, T(-1));
    acc.reduce_into(out.data());
    for (index_t j = 0; j < 4; ++j) {
      T expect = 0;
      for (index_t i = j; i < 100; i += 4) expect += T(i);
      CHECK(out[j] == expect);
    }
    acc.add_into(out.data());
    CHECK(out[1] == T(2) * (T(1) + T(97)) * T(25) / T(2));
    acc.zero();
    acc.reduce_into(out.data());
    CHECK(out[0] == T(0));
  }
}

}  // namespace test_core_parallel
