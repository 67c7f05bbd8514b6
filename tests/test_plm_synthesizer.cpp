// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/synthesizer.hpp: parameter declaration and init, the block's forward against
// an unfused composition of plain loops, its backward end to end against finite differences
// (every parameter and the region features), options, threads, float vs double, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/plm/synthesizer.hpp"

namespace test_plm_synthesizer {

using namespace zss;

namespace {

test::ref::residual ref_residual(synthesizer_residual r) {
  return r == synthesizer_residual::query  ? test::ref::residual::query
         : r == synthesizer_residual::none ? test::ref::residual::none
                                           : test::ref::residual::teacher;
}

constexpr synthesizer_residual all_residuals[] = {
    synthesizer_residual::query, synthesizer_residual::none, synthesizer_residual::teacher};

/// A synthesizer problem: B images with the given region counts, width d, hidden h.
template <class T>
struct synth_problem {
  index_t d, h, n, images;
  std::vector<index_t> off;
  param_buffer<T> buf;
  synthesizer_param_ids ids;
  aligned_vector<T> P, C, U;

  synth_problem(std::vector<index_t> counts, index_t d_, index_t h_, std::uint64_t seed,
                bool perturb = true)
      : d(d_), h(h_), images(counts.size()) {
    off = {0};
    for (auto c : counts) off.push_back(off.back() + c);
    n = off.back();
    ids = declare_synthesizer_params(buf, d, h, "syn.");
    buf.allocate();
    init_synthesizer_params(buf, ids, seed);
    if (perturb) {  // make γ, β and biases non-trivial so that every gradient path is exercised
      rng g(seed, 1000);
      for (auto id : ids.all())
        if (buf.entries()[id].shape.size() == 1)
          for (index_t i = 0; i < buf.entries()[id].size; ++i)
            buf.value(id)[i] += g.uniform<T>(T(-0.3), T(0.3));
    }
    P = test::uniform_vector<T>(n * d, seed + 1, T(-1), T(1));
    C = test::uniform_vector<T>(images * d, seed + 2, T(-1), T(1));
    U = test::uniform_vector<T>(n * d, seed + 3, T(-1), T(1));
  }

  std::vector<T> forward(synthesizer_cache<T>& cache, const synthesizer_options& opt = {},
                         int threads = 1) const {
    std::vector<T> Pi(n * d);
    synthesizer_forward<T>({Pi.data(), n, d}, cache, {P.data(), n, d}, {C.data(), images, d},
                           {U.data(), n, d}, off, ids.params(buf), opt, threads);
    return Pi;
  }
  void backward(std::vector<T>& dP, const std::vector<T>& dPi, synthesizer_cache<T>& cache,
                const std::vector<T>& Pi, const synthesizer_options& opt = {}, int threads = 1) {
    synthesizer_backward<T>({dP.data(), n, d}, ids.grads(buf), {dPi.data(), n, d}, cache,
                            {Pi.data(), n, d}, {P.data(), n, d}, {C.data(), images, d},
                            {U.data(), n, d}, off, ids.params(buf), opt, threads);
  }

  test::ref::synth_params ref_params() const {
    auto v = [&](index_t id) {
      const auto& e = buf.entries()[id];
      return test::ref::vec(buf.value(id), buf.value(id) + e.size);
    };
    test::ref::synth_params p;
    p.d = d;
    p.h = h;
    p.ln1_g = v(ids.ln1_gamma), p.ln1_b = v(ids.ln1_beta);
    p.Wq = v(ids.q_w), p.bq = v(ids.q_b), p.Wk = v(ids.k_w), p.bk = v(ids.k_b);
    p.Wv = v(ids.v_w), p.bv = v(ids.v_b), p.Wo = v(ids.o_w), p.bo = v(ids.o_b);
    p.ln2_g = v(ids.ln2_gamma), p.ln2_b = v(ids.ln2_beta);
    p.W1 = v(ids.fc1_w), p.b1 = v(ids.fc1_b), p.W2 = v(ids.fc2_w), p.b2 = v(ids.fc2_b);
    return p;
  }
  test::ref::vec reference(const synthesizer_options& opt, test::ref::act a) const {
    return test::ref::synthesizer(test::to_double(P), n, test::to_double(C), test::to_double(U),
                                  off, ref_params(), opt.region_tokens, a, opt.layer_norm_eps,
                                  nullptr, ref_residual(opt.residual));
  }
};

}  // namespace

TEST_CASE(
    "declare and init: names, shapes, He/Xavier scales, seeded and independent of the buffer") {
  param_buffer<double> buf;
  buf.add("student.w", {3, 3});
  const auto ids = declare_synthesizer_params(buf, 64, 0, "syn.");
  buf.allocate();
  CHECK(ids.hidden == 256);
  CHECK(buf.id("syn.attn.q.weight") == ids.q_w);
  CHECK(buf.id("syn.mlp.fc1.weight") == ids.fc1_w);
  CHECK(buf.entries()[ids.fc1_w].shape == std::vector<index_t>{256, 64});
  CHECK(buf.entries()[ids.fc2_w].shape == std::vector<index_t>{64, 256});
  CHECK(buf.parameter_count() == 9 + 4 * 64 + 4 * (64 * 64 + 64) + 256 * 64 + 256 + 64 * 256 + 64);
  init_synthesizer_params(buf, ids, 7);
  for (index_t j = 0; j < 64; ++j) {
    CHECK(buf.value(ids.ln1_gamma)[j] == 1.0);
    CHECK(buf.value(ids.ln2_beta)[j] == 0.0);
    CHECK(buf.value(ids.q_b)[j] == 0.0);
  }
  auto sd = [&](index_t id) {
    const auto& e = buf.entries()[id];
    double s = 0;
    for (index_t i = 0; i < e.size; ++i) s += buf.value(id)[i] * buf.value(id)[i];
    return std::sqrt(s / double(e.size));
  };
  CHECK(sd(ids.q_w) == doctest::Approx(std::sqrt(2.0 / 128)).epsilon(0.03));           // Xavier
  CHECK(sd(ids.fc1_w) == doctest::Approx(std::sqrt(2.0 / 64)).epsilon(0.03));          // He
  CHECK(sd(ids.fc2_w) == doctest::Approx(std::sqrt(2.0 / (256 + 64))).epsilon(0.03));  // Xavier
  // The same seed gives the same values in a buffer without the extra tensor; another seed differs.
  param_buffer<double> other;
  const auto ids2 = declare_synthesizer_params(other, 64, 0, "syn.");
  other.allocate();
  init_synthesizer_params(other, ids2, 7);
  CHECK(std::equal(buf.value(ids.fc2_w), buf.value(ids.fc2_w) + 64 * 256, other.value(ids2.fc2_w)));
  init_synthesizer_params(other, ids2, 8);
  CHECK(other.value(ids2.fc2_w)[0] != buf.value(ids.fc2_w)[0]);
  // Different tensors draw different numbers.
  CHECK(buf.value(ids.q_w)[0] != buf.value(ids.k_w)[0]);
  CHECK_THROWS_AS(declare_synthesizer_params(buf, 8), std::invalid_argument);  // allocated
}

TEST_CASE_TEMPLATE("synthesizer forward matches the unfused plain-loop block", T, float, double) {
  eigen_single_thread_guard guard;
  const std::pair<mlp_activation, test::ref::act> acts[] = {
      {mlp_activation::gelu_erf, test::ref::act::gelu_erf},
      {mlp_activation::gelu_tanh, test::ref::act::gelu_tanh},
      {mlp_activation::relu, test::ref::act::relu}};
  // Images with 3, 1, 0 and 4 regions.
  synth_problem<T> p({3, 1, 0, 4}, 16, 24, 1);
  for (auto residual : all_residuals)
    for (bool tokens : {true, false})
      for (auto [act, ref_act] : acts) {
        CAPTURE(int(residual));
        CAPTURE(tokens);
        CAPTURE(int(act));
        synthesizer_options opt;
        opt.residual = residual;
        opt.region_tokens = tokens;
        opt.activation = act;
        synthesizer_cache<T> cache;
        const auto Pi = p.forward(cache, opt);
        CHECK(test::scaled_max_error(Pi, p.reference(opt, ref_act)) < test::forward_tol<T> * 5);
        for (index_t i = 0; i < p.n; ++i) {
          double s = 0;
          for (index_t j = 0; j < p.d; ++j) s += double(Pi[i * p.d + j]) * double(Pi[i * p.d + j]);
          CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
        }
      }
  // A single region in a single image.
  synth_problem<T> one({1}, 8, 8, 2);
  synthesizer_cache<T> cache;
  CHECK(test::scaled_max_error(one.forward(cache), one.reference({}, test::ref::act::gelu_erf)) <
        test::forward_tol<T> * 5);
}

TEST_CASE("synthesizer backward end to end equals finite differences (all parameters and P)") {
  eigen_single_thread_guard guard;
  struct variant {
    std::vector<index_t> counts;
    bool tokens;
    mlp_activation act;
    synthesizer_residual residual = synthesizer_residual::query;
  };
  const variant variants[] = {
      {{2, 1, 3}, true, mlp_activation::gelu_erf},
      {{2, 0, 3}, false, mlp_activation::gelu_tanh},
      {{1}, true, mlp_activation::gelu_erf},
      {{1, 2}, false, mlp_activation::gelu_erf},
      {{2, 1, 3}, true, mlp_activation::gelu_erf, synthesizer_residual::none},
      {{3, 2}, true, mlp_activation::gelu_tanh, synthesizer_residual::none},
      {{2, 1, 3}, true, mlp_activation::gelu_erf, synthesizer_residual::teacher},
      {{1}, true, mlp_activation::gelu_tanh, synthesizer_residual::teacher},
      {{2, 0, 3}, false, mlp_activation::gelu_erf, synthesizer_residual::teacher}};
  for (const auto& v : variants) {
    CAPTURE(v.tokens);
    CAPTURE(int(v.residual));
    CAPTURE(v.counts.size());
    synth_problem<double> p(v.counts, 6, 10, 3);
    synthesizer_options opt;
    opt.region_tokens = v.tokens;
    opt.residual = v.residual;
    opt.activation = v.act;
    // One zero region feature (LN of a constant row: x̂ = 0).
    for (index_t j = 0; j < p.d; ++j) p.P[j] = 0;
    const auto R = test::uniform_vector<double>(p.n * p.d, 77);
    auto loss = [&] {
      synthesizer_cache<double> c;
      const auto Pi = p.forward(c, opt);
      double s = 0;
      for (index_t i = 0; i < Pi.size(); ++i) s += R[i] * Pi[i];
      return s;
    };
    synthesizer_cache<double> cache;
    const auto Pi = p.forward(cache, opt);
    std::vector<double> dP(p.n * p.d, 0.25), dPi(R.begin(), R.end());
    p.buf.zero_grad();
    p.backward(dP, dPi, cache, Pi, opt);
    for (auto& x : dP) x -= 0.25;  // adds into
    CHECK(test::relative_error(dP, test::numeric_gradient(loss, p.P.data(), p.P.size())) < 1e-6);
    // Every parameter, tensor by tensor so that a failure names it.
    for (auto id : p.ids.all()) {
      const auto& e = p.buf.entries()[id];
      CAPTURE(e.name);
      std::vector<double> analytic(p.buf.grad(id), p.buf.grad(id) + e.size);
      const auto numeric = test::numeric_gradient(loss, p.buf.value(id), e.size);
      if (id == p.ids.k_b) {
        // Softmax is shift-invariant and b_k shifts a row's scores equally: the gradient is 0.
        for (index_t i = 0; i < e.size; ++i) {
          CHECK(std::abs(analytic[i]) < 1e-12);
          CHECK(std::abs(numeric[i]) < 1e-8);
        }
      } else {
        CHECK(test::relative_error(analytic, numeric) < 1e-6);
      }
    }
  }
}

TEST_CASE(
    "synthesizer with one memory row (region tokens off, one image): no gradient to W_q, W_k") {
  eigen_single_thread_guard guard;
  synth_problem<double> p({3}, 5, 7, 4);
  synthesizer_options opt;
  opt.region_tokens = false;
  synthesizer_cache<double> cache;
  const auto Pi = p.forward(cache, opt);
  const auto R = test::uniform_vector<double>(p.n * p.d, 5);
  std::vector<double> dP(p.n * p.d, 0.0), dPi(R.begin(), R.end());
  p.buf.zero_grad();
  p.backward(dP, dPi, cache, Pi, opt);
  for (auto id : {p.ids.q_w, p.ids.q_b, p.ids.k_w, p.ids.k_b, p.ids.ln1_gamma, p.ids.ln1_beta})
    for (index_t i = 0; i < p.buf.entries()[id].size; ++i) CHECK(p.buf.grad(id)[i] == 0.0);
  double sv = 0;
  for (index_t i = 0; i < p.buf.entries()[p.ids.v_w].size; ++i)
    sv += std::abs(p.buf.grad(p.ids.v_w)[i]);
  CHECK(sv > 0);
  // Without the query shortcut as well, every region of the image gets the same prototype, read
  // from the CLS alone: nothing depends on P, and no gradient reaches it.
  opt.residual = synthesizer_residual::none;
  const auto Pi2 = p.forward(cache, opt);
  for (index_t i = 1; i < p.n; ++i)
    for (index_t j = 0; j < p.d; ++j)
      CHECK(Pi2[i * p.d + j] == doctest::Approx(Pi2[j]).epsilon(1e-12));
  std::fill(dP.begin(), dP.end(), 0.0);
  p.backward(dP, dPi, cache, Pi2, opt);
  for (double x : dP) CHECK(x == 0.0);
}

TEST_CASE(
    "identity init: the untrained block without the shortcut returns the normalised memory read") {
  eigen_single_thread_guard guard;
  synth_problem<double> p({2, 3}, 6, 12, 5, false);
  init_synthesizer_params(p.buf, p.ids, 5, synthesizer_init::identity);
  const index_t d = p.d;
  for (auto id : {p.ids.q_w, p.ids.k_w, p.ids.v_w, p.ids.o_w})
    for (index_t i = 0; i < d; ++i)
      for (index_t j = 0; j < d; ++j) CHECK(p.buf.value(id)[i * d + j] == (i == j ? 1.0 : 0.0));
  for (index_t i = 0; i < p.h * d; ++i) CHECK(p.buf.value(p.ids.fc2_w)[i] == 0.0);
  // fc1 keeps its He init (the same numbers as the Xavier mode's).
  param_buffer<double> other;
  const auto ids2 = declare_synthesizer_params(other, d, p.h, "syn.");
  other.allocate();
  init_synthesizer_params(other, ids2, 5);
  CHECK(std::equal(p.buf.value(p.ids.fc1_w), p.buf.value(p.ids.fc1_w) + p.h * d,
                   other.value(ids2.fc1_w)));
  synthesizer_options opt;
  opt.residual = synthesizer_residual::none;
  opt.region_tokens = false;  // one memory row per image: the read is exactly c_b
  synthesizer_cache<double> cache;
  const auto Pi = p.forward(cache, opt);
  for (index_t b = 0; b < p.images; ++b) {
    double nc = 0;
    for (index_t j = 0; j < d; ++j) nc += p.C[b * d + j] * p.C[b * d + j];
    for (index_t l = p.off[b]; l < p.off[b + 1]; ++l)
      for (index_t j = 0; j < d; ++j)
        CHECK(Pi[l * d + j] == doctest::Approx(p.C[b * d + j] / std::sqrt(nc)));
  }
}

TEST_CASE("zero-update init with the teacher residual: the untrained block returns n(u_l)") {
  eigen_single_thread_guard guard;
  synth_problem<double> p({2, 3, 1}, 6, 12, 8, false);
  init_synthesizer_params(p.buf, p.ids, 8, synthesizer_init::zero_update);
  const index_t d = p.d;
  for (auto id : {p.ids.o_w, p.ids.fc2_w})
    for (index_t i = 0; i < p.buf.entries()[id].size; ++i) CHECK(p.buf.value(id)[i] == 0.0);
  // The other tensors keep their Xavier / He values (the same numbers as the xavier mode's).
  param_buffer<double> other;
  const auto ids2 = declare_synthesizer_params(other, d, p.h, "syn.");
  other.allocate();
  init_synthesizer_params(other, ids2, 8);
  for (auto [a, b] :
       {std::pair{p.ids.q_w, ids2.q_w}, {p.ids.v_w, ids2.v_w}, {p.ids.fc1_w, ids2.fc1_w}})
    CHECK(std::equal(p.buf.value(a), p.buf.value(a) + p.buf.entries()[a].size, other.value(b)));
  synthesizer_options opt;
  opt.residual = synthesizer_residual::teacher;
  synthesizer_cache<double> cache;
  const auto Pi = p.forward(cache, opt);
  for (index_t l = 0; l < p.n; ++l) {
    double nu = 0;
    for (index_t j = 0; j < d; ++j) nu += p.U[l * d + j] * p.U[l * d + j];
    for (index_t j = 0; j < d; ++j)
      CHECK(Pi[l * d + j] == doctest::Approx(p.U[l * d + j] / std::sqrt(nu)).epsilon(1e-12));
  }
  // The student's features still reach the prototypes through the attention once W_o moves, and
  // not before: with W_o = 0 and fc2 = 0 the gradient into P is zero.
  const auto R = test::uniform_vector<double>(p.n * d, 9);
  std::vector<double> dP(p.n * d, 0.0), dPi(R.begin(), R.end());
  p.buf.zero_grad();
  p.backward(dP, dPi, cache, Pi, opt);
  for (double x : dP) CHECK(x == 0.0);
  double go = 0;
  for (index_t i = 0; i < p.buf.entries()[p.ids.o_w].size; ++i)
    go += std::abs(p.buf.grad(p.ids.o_w)[i]);
  CHECK(go > 0);  // W_o learns first
  // Without region tokens in the memory the residual still needs U: one row per region.
  opt.region_tokens = false;
  const std::vector<double> U_short(p.U.begin(), p.U.end() - long(d));
  std::vector<double> out(p.n * d);
  CHECK_THROWS_WITH_AS(
      synthesizer_forward<double>({out.data(), p.n, d}, cache, {p.P.data(), p.n, d},
                                  {p.C.data(), p.images, d}, {U_short.data(), p.n - 1, d}, p.off,
                                  p.ids.params(p.buf), opt, 1),
      doctest::Contains("U (teacher region tokens)"), std::invalid_argument);
}

TEST_CASE_TEMPLATE("synthesizer: 1 and 2 threads give the same bits", T, float, double) {
  eigen_single_thread_guard guard;
  synth_problem<T> p({8, 8, 8, 5}, 72, 144, 9);
  const auto R = test::uniform_vector<T>(p.n * p.d, 10);
  std::vector<std::vector<T>> out;
  for (int threads : {1, 2}) {
    synthesizer_cache<T> cache;
    const auto Pi = p.forward(cache, {}, threads);
    std::vector<T> dP(p.n * p.d, T(0)), dPi(R.begin(), R.end());
    p.buf.zero_grad();
    p.backward(dP, dPi, cache, Pi, {}, threads);
    out.push_back(Pi);
    out.push_back(dP);
    out.emplace_back(p.buf.grads(), p.buf.grads() + p.buf.size());
  }
  CHECK(out[0] == out[3]);
  CHECK(out[1] == out[4]);
  CHECK(out[2] == out[5]);
}

TEST_CASE("synthesizer: float agrees with double within float tolerance") {
  eigen_single_thread_guard guard;
  synth_problem<double> pd({4, 3}, 32, 64, 12);
  synth_problem<float> pf({4, 3}, 32, 64, 12);
  // Same numbers in both precisions.
  for (index_t i = 0; i < pd.buf.size(); ++i) pf.buf.values()[i] = float(pd.buf.values()[i]);
  for (index_t i = 0; i < pd.P.size(); ++i) pf.P[i] = float(pd.P[i]), pf.U[i] = float(pd.U[i]);
  for (index_t i = 0; i < pd.C.size(); ++i) pf.C[i] = float(pd.C[i]);
  const auto R = test::uniform_vector<double>(pd.n * pd.d, 13);
  synthesizer_cache<double> cd;
  synthesizer_cache<float> cf;
  const auto Pid = pd.forward(cd);
  const auto Pif = pf.forward(cf);
  CHECK(test::scaled_max_error(Pif, test::to_double(Pid)) < 1e-5);
  std::vector<double> dPd(pd.n * pd.d, 0.0), dPid(R.begin(), R.end());
  std::vector<float> dPf(pf.n * pf.d, 0.0f), dPif(R.begin(), R.end());
  pd.buf.zero_grad();
  pf.buf.zero_grad();
  pd.backward(dPd, dPid, cd, Pid);
  pf.backward(dPf, dPif, cf, Pif);
  CHECK(test::relative_error(dPf, dPd) < 1e-5);
  CHECK(test::relative_error(std::vector<float>(pf.buf.grads(), pf.buf.grads() + pf.buf.size()),
                             std::vector<double>(pd.buf.grads(), pd.buf.grads() + pd.buf.size())) <
        1e-5);
}

TEST_CASE("synthesizer rejects bad shapes and offsets with clear messages") {
  synth_problem<float> p({2, 3}, 8, 8, 5);
  synthesizer_cache<float> cache;
  std::vector<float> Pi(p.n * p.d);
  const auto params = p.ids.params(p.buf);
  CHECK_THROWS_WITH_AS(
      synthesizer_forward<float>({Pi.data(), p.n, p.d}, cache, {p.P.data(), p.n, p.d},
                                 {p.C.data(), 1, p.d}, {p.U.data(), p.n, p.d}, p.off, params),
      doctest::Contains("C (teacher CLS) has shape (1, 8), expected (2, 8)"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      synthesizer_forward<float>({Pi.data(), p.n, p.d}, cache, {p.P.data(), p.n, p.d},
                                 {p.C.data(), 2, p.d}, {p.U.data(), 4, p.d}, p.off, params),
      doctest::Contains("U (teacher region tokens) has shape (4, 8), expected (5, 8)"),
      std::invalid_argument);
  std::vector<index_t> bad_off{0, 2, 4};
  CHECK_THROWS_WITH_AS(
      synthesizer_forward<float>({Pi.data(), p.n, p.d}, cache, {p.P.data(), p.n, p.d},
                                 {p.C.data(), 2, p.d}, {p.U.data(), p.n, p.d}, bad_off, params),
      doctest::Contains("region_offsets ends at 4, expected 5"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      synthesizer_forward<float>({Pi.data(), p.n, 4}, cache, {p.P.data(), p.n, 4},
                                 {p.C.data(), 2, p.d}, {p.U.data(), p.n, p.d}, p.off, params),
      doctest::Contains("columns of P (5, 4)"), std::invalid_argument);
  // Region tokens off: U is not needed.
  synthesizer_options opt;
  opt.region_tokens = false;
  CHECK_NOTHROW(synthesizer_forward<float>({Pi.data(), p.n, p.d}, cache, {p.P.data(), p.n, p.d},
                                           {p.C.data(), 2, p.d}, {}, p.off, params, opt));
}

}  // namespace test_plm_synthesizer
