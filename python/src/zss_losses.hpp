// SPDX-License-Identifier: Apache-2.0
#pragma once
// The losses of the `zss` Python module as forward/backward pairs (DESIGN.md §2.1, §2.2):
// cosine CE with per-image class sets, cosine logits + focal/dice (NEL), GLM with its pooling
// variants and the CLS bank, InfoNCE and BCE on logits.
//
// Python convention: `<loss>_forward(...)` returns `(loss, cache)`; `<loss>_backward(cache,
// dloss=1.0, *, d<X>=None, ...)` returns the gradients, **adding into** the arrays given as
// `d<X>=` (the library's convention: several losses can accumulate into one buffer) or into
// fresh zero arrays. The cache keeps references to the forward's input arrays (no copies), so
// they must not be modified in between. `*_forward_backward` (cosine CE, GLM) is the fused fast
// path: loss and gradients in one pass. Included once, by zss_module.cpp (the module's only
// translation unit).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "common.hpp"
#include "zss/loss/bce.hpp"
#include "zss/loss/cls_bank.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/loss/focal_dice.hpp"
#include "zss/loss/glm.hpp"
#include "zss/loss/info_nce.hpp"

namespace zss::python {

namespace {

static_assert(std::is_same_v<int, std::int32_t>, "labels are passed to the library as int");

/// A loss's cache for either dtype: `S<float>` or `S<double>`, shared so Python can copy it.
template <template <class> class S>
struct any_cache {
  std::variant<std::shared_ptr<S<float>>, std::shared_ptr<S<double>>> state;
  double loss = 0;
  std::string dtype() const { return state.index() == 0 ? "float32" : "float64"; }
};

template <template <class> class S>
py::class_<any_cache<S>> bind_cache(py::module_& m, const char* name, const char* doc) {
  return py::class_<any_cache<S>>(m, name, doc)
      .def_readonly("loss", &any_cache<S>::loss, "the forward's loss")
      .def_property_readonly("dtype", &any_cache<S>::dtype, "'float32' or 'float64'");
}

template <template <class> class S, class T>
any_cache<S> make_cache(std::shared_ptr<S<T>> s) {
  any_cache<S> c;
  c.loss = s->loss;
  c.state = std::move(s);
  return c;
}

// --- the CLS bank -----------------------------------------------------------------------------

/// The scalar type of a `cls_bank<T>` (reference).
template <class B>
using bank_scalar = std::remove_cv_t<std::remove_pointer_t<decltype(std::declval<B>().row(0))>>;

/// `zss.ClsBank`: the FIFO of past CLS tokens GLM uses as extra keys, in float32 or float64.
struct py_bank {
  std::variant<cls_bank<float>, cls_bank<double>> bank;
  bool f32() const { return bank.index() == 0; }
};

template <real_scalar T>
const cls_bank<T>& bank_arg(py::handle h, const std::string& where) {
  static const cls_bank<T> none;
  if (h.is_none()) return none;
  if (!py::isinstance<py_bank>(h)) throw py::value_error(where + ": bank must be a zss.ClsBank");
  const auto& b = h.cast<const py_bank&>();
  if (!std::holds_alternative<cls_bank<T>>(b.bank))
    throw py::value_error(where + ": the bank holds " + (b.f32() ? "float32" : "float64") +
                          " but the features are " +
                          (std::is_same_v<T, float> ? "float32" : "float64"));
  return std::get<cls_bank<T>>(b.bank);
}

// --- GLM --------------------------------------------------------------------------------------

glm_pool parse_pool(const std::string& s) {
  for (const auto& [v, n] : glm_pool_names)
    if (s == n) return v;
  throw py::value_error("glm: pool must be 'attention', 'mean', 'dense' or 'selective', got '" + s +
                        "'");
}

template <real_scalar T>
struct glm_state {
  using value_type = T;
  carray<T> R, C;
  std::vector<py::ssize_t> R_shape;
  index_t P = 0;
  glm_options options;
  glm_cache<T> cache;
  double loss = 0;
};

template <real_scalar T>
std::shared_ptr<glm_state<T>> glm_inputs(py::handle R_h, py::handle C_h, const glm_options& o,
                                         const std::string& where) {
  auto s = std::make_shared<glm_state<T>>();
  s->R = real_array<T>(R_h, where, "R");
  check_ndim(s->R, {2, 3}, where, "R (B x P x D or B*P x D)");
  s->C = real_array<T>(C_h, where, "C");
  check_ndim(s->C, {2}, where, "C (B x D)");
  s->R_shape = shape_vector(s->R);
  const auto B = s->C.shape(0);
  if (s->R.ndim() == 3) {
    if (s->R.shape(0) != B)
      throw py::value_error(where + ": R has shape " + shape_of(s->R) + " but C has " +
                            std::to_string(B) + " rows (B)");
    s->P = static_cast<index_t>(s->R.shape(1));
  } else {
    if (B == 0 || s->R.shape(0) % B != 0)
      throw py::value_error(where + ": R has " + std::to_string(s->R.shape(0)) +
                            " rows, not a multiple of B = " + std::to_string(B) +
                            " (the rows of C)");
    s->P = static_cast<index_t>(s->R.shape(0) / B);
  }
  s->options = o;
  return s;
}

template <real_scalar T>
py::tuple glm_forward_impl(py::handle R_h, py::handle C_h, py::handle bank_h, const glm_options& o,
                           bool with_backward, double dloss, py::handle dR_h) {
  const std::string where = with_backward ? "glm_forward_backward" : "glm_forward";
  auto s = glm_inputs<T>(R_h, C_h, o, where);
  const auto& bank = bank_arg<T>(bank_h, where);
  const auto R = matrix_of(s->R), C = matrix_of(s->C);
  T loss{};
  if (!with_backward) {
    {
      py::gil_scoped_release nogil;
      glm_forward<T>(loss, s->cache, R, s->P, C, bank, s->options);
    }
    s->loss = double(loss);
    return py::make_tuple(s->loss, make_cache(s));
  }
  // accumulate=False writes every element of dR: a new one need not be zeroed first.
  auto dR = output_array<T>(dR_h, s->R_shape, where, "dR", o.accumulate);
  const matrix_ref<T> dRm(dR.mutable_data(), R.rows, R.cols);
  {
    py::gil_scoped_release nogil;
    glm_forward_backward<T>(loss, dRm, s->cache, R, s->P, C, bank, s->options, T(dloss));
  }
  return py::make_tuple(double(loss), dR);
}

py::object glm_backward_py(const any_cache<glm_state>& c, double dloss, array_like dR_h,
                           bool accumulate) {
  return std::visit(
      [&](const auto& s) -> py::object {
        using T = typename std::decay_t<decltype(*s)>::value_type;
        auto dR = output_array<T>(dR_h, s->R_shape, "glm_backward", "dR", accumulate);
        const auto R = matrix_of(s->R), C = matrix_of(s->C);
        const matrix_ref<T> dRm(dR.mutable_data(), R.rows, R.cols);
        glm_options o = s->options;
        o.accumulate = accumulate;
        {
          py::gil_scoped_release nogil;
          glm_backward<T>(dRm, T(dloss), s->cache, R, s->P, C, o);
        }
        return dR;
      },
      c.state);
}

// --- class-set layout (cosine CE, cosine logits, focal/dice) ----------------------------------

/// The arrays of a class-set batch layout, held so the views stay valid.
template <real_scalar T>
struct class_layout {
  std::optional<carray<T>> seen, pseudo;  // absent: only counts (seen_rows, pseudo_rows)
  std::vector<index_t> row_offsets, pseudo_offsets;
  index_t seen_rows = 0, pseudo_rows = 0;

  class_sets<T> sets() const {
    class_sets<T> s;
    s.row_offsets = row_offsets;
    s.seen = seen ? matrix_of(*seen) : matrix_ref<const T>(nullptr, seen_rows, 0);
    s.pseudo = pseudo ? matrix_of(*pseudo) : matrix_ref<const T>(nullptr, pseudo_rows, 0);
    if (!pseudo_offsets.empty()) s.pseudo_offsets = pseudo_offsets;
    return s;
  }
};

/// Offsets of the pseudo classes: given, or [0, M] for one image, or empty without pseudo rows.
inline std::vector<index_t> pseudo_offsets_arg(py::handle h, index_t pseudo_rows, index_t images,
                                               const std::string& where) {
  if (!h.is_none()) return offsets_arg(h, pseudo_rows, where, "pseudo_offsets");
  if (pseudo_rows == 0) return {};
  if (images != 1)
    throw py::value_error(where + ": pseudo has " + std::to_string(pseudo_rows) +
                          " rows: pass pseudo_offsets (B + 1 = " + std::to_string(images + 1) +
                          " offsets) to say which image owns which pseudo classes");
  return {0, pseudo_rows};
}

template <real_scalar T>
class_layout<T> make_layout(py::handle seen_h, py::handle pseudo_h, py::handle rows_h,
                            py::handle poff_h, index_t n, const std::string& where) {
  class_layout<T> l;
  l.seen = real_array<T>(seen_h, where, "seen");
  check_ndim(*l.seen, {2}, where, "seen (Ks x D)");
  if (!pseudo_h.is_none()) {
    l.pseudo = real_array<T>(pseudo_h, where, "pseudo");
    check_ndim(*l.pseudo, {2}, where, "pseudo (sum M_b x D)");
  }
  l.row_offsets = offsets_arg(rows_h, n, where, "row_offsets");
  const index_t M = l.pseudo ? static_cast<index_t>(l.pseudo->shape(0)) : 0;
  l.pseudo_offsets = pseudo_offsets_arg(poff_h, M, l.row_offsets.size() - 1, where);
  return l;
}

template <real_scalar T>
struct cosine_ce_state {
  using value_type = T;
  carray<T> X;
  std::optional<carray<T>> weights;
  carray<std::int32_t> labels;
  std::vector<py::ssize_t> X_shape;
  class_layout<T> layout;
  cosine_ce_options options;
  cosine_ce_cache<T> cache;
  double loss = 0;
};

template <real_scalar T>
std::span<const T> weights_span(const std::optional<carray<T>>& w) {
  return w ? std::span<const T>(w->data(), static_cast<std::size_t>(w->size()))
           : std::span<const T>{};
}

inline std::span<const int> labels_span(const carray<std::int32_t>& l) {
  return {l.data(), static_cast<std::size_t>(l.size())};
}

template <real_scalar T>
std::shared_ptr<cosine_ce_state<T>> cosine_ce_inputs(
    py::handle X_h, py::handle labels_h, py::handle seen_h, py::handle pseudo_h, py::handle rows_h,
    py::handle poff_h, py::handle weights_h, const cosine_ce_options& o, const std::string& where) {
  auto s = std::make_shared<cosine_ce_state<T>>();
  s->X = real_array<T>(X_h, where, "X");
  check_ndim(s->X, {2}, where, "X (N x D)");
  s->X_shape = shape_vector(s->X);
  s->labels = label_array(labels_h, where, "labels");
  if (!weights_h.is_none()) s->weights = real_array<T>(weights_h, where, "weights");
  const auto X = matrix_of(s->X);
  s->layout = make_layout<T>(seen_h, pseudo_h, rows_h, poff_h, X.rows, where);
  s->options = o;
  return s;
}

/// dT and dP outputs when wanted (given, or requested with seen_grad / pseudo_grad).
template <real_scalar T>
struct class_grads {
  py::object dT = py::none(), dP = py::none();
  class_set_grads<T> views;
};

template <real_scalar T>
class_grads<T> class_grad_outputs(const class_layout<T>& l, index_t d, py::handle dT_h,
                                  py::handle dP_h, bool seen_grad, bool pseudo_grad,
                                  const std::string& where) {
  class_grads<T> g;
  const auto Ks = static_cast<py::ssize_t>(l.seen->shape(0));
  const auto D = static_cast<py::ssize_t>(d);
  if (seen_grad || !dT_h.is_none()) {
    auto dT = output_array<T>(dT_h, {Ks, D}, where, "dT");
    g.views.seen = matrix_ref<T>(dT.mutable_data(), index_t(Ks), d);
    g.dT = dT;
  }
  if (l.pseudo && (pseudo_grad || !dP_h.is_none())) {
    const auto M = static_cast<py::ssize_t>(l.pseudo->shape(0));
    auto dP = output_array<T>(dP_h, {M, D}, where, "dP");
    g.views.pseudo = matrix_ref<T>(dP.mutable_data(), index_t(M), d);
    g.dP = dP;
  }
  return g;
}

template <real_scalar T>
py::tuple cosine_ce_forward_impl(py::handle X_h, py::handle labels_h, py::handle seen_h,
                                 py::handle pseudo_h, py::handle rows_h, py::handle poff_h,
                                 py::handle weights_h, const cosine_ce_options& o) {
  const std::string where = "cosine_ce_forward";
  auto s =
      cosine_ce_inputs<T>(X_h, labels_h, seen_h, pseudo_h, rows_h, poff_h, weights_h, o, where);
  const auto X = matrix_of(s->X);
  const auto sets = s->layout.sets();
  T loss{};
  {
    py::gil_scoped_release nogil;
    cosine_ce_forward<T>(loss, s->cache, X, labels_span(s->labels), weights_span(s->weights), sets,
                         s->options);
  }
  s->loss = double(loss);
  return py::make_tuple(s->loss, make_cache(s));
}

template <real_scalar T>
py::tuple cosine_ce_backward_impl(cosine_ce_state<T>& s, double dloss, py::handle dX_h,
                                  py::handle dT_h, py::handle dP_h, bool seen_grad,
                                  bool pseudo_grad, bool accumulate, bool fused,
                                  const std::string& where) {
  const auto X = matrix_of(s.X);
  auto dX = output_array<T>(dX_h, s.X_shape, where, "dX", accumulate);  // (see glm's dR)
  const matrix_ref<T> dXm(dX.mutable_data(), X.rows, X.cols);
  auto g = class_grad_outputs(s.layout, X.cols, dT_h, dP_h, seen_grad, pseudo_grad, where);
  const auto sets = s.layout.sets();
  cosine_ce_options o = s.options;
  o.accumulate = accumulate;
  T loss{};
  {
    py::gil_scoped_release nogil;
    if (fused)
      cosine_ce_forward_backward<T>(loss, dXm, g.views, s.cache, X, labels_span(s.labels),
                                    weights_span(s.weights), sets, o, T(dloss));
    else
      cosine_ce_backward<T>(dXm, g.views, T(dloss), s.cache, X, labels_span(s.labels),
                            weights_span(s.weights), sets, o);
  }
  if (fused) return py::make_tuple(double(loss), dX, g.dT, g.dP);
  return py::make_tuple(dX, g.dT, g.dP);
}

// --- cosine logits ----------------------------------------------------------------------------

template <real_scalar T>
struct cosine_logits_state {
  using value_type = T;
  carray<T> X;
  std::vector<py::ssize_t> X_shape;
  class_layout<T> layout;
  cosine_logits_options options;
  cosine_logits_cache<T> cache;
  double loss = 0;  // unused (a layer, not a loss)
};

template <real_scalar T>
py::tuple cosine_logits_forward_impl(py::handle X_h, py::handle seen_h, py::handle pseudo_h,
                                     py::handle rows_h, py::handle poff_h,
                                     const cosine_logits_options& o) {
  const std::string where = "cosine_logits_forward";
  auto s = std::make_shared<cosine_logits_state<T>>();
  s->X = real_array<T>(X_h, where, "X");
  check_ndim(s->X, {2}, where, "X (N x D)");
  s->X_shape = shape_vector(s->X);
  const auto X = matrix_of(s->X);
  s->layout = make_layout<T>(seen_h, pseudo_h, rows_h, poff_h, X.rows, where);
  s->options = o;
  const auto sets = s->layout.sets();
  // Kmax needs a valid layout: the library checks it in the call; guard the size here.
  detail::check_class_sets(where, X, sets);
  const auto kmax = static_cast<py::ssize_t>(sets.max_classes());
  py::array_t<T> S({static_cast<py::ssize_t>(X.rows), kmax});
  const matrix_ref<T> Sm(S.mutable_data(), X.rows, index_t(kmax));
  {
    py::gil_scoped_release nogil;
    cosine_logits_forward<T>(Sm, s->cache, X, sets, s->options);
  }
  return py::make_tuple(S, make_cache(s));
}

template <real_scalar T>
py::tuple cosine_logits_backward_impl(cosine_logits_state<T>& s, py::handle dS_h, py::handle dX_h,
                                      py::handle dT_h, py::handle dP_h, bool seen_grad,
                                      bool pseudo_grad) {
  const std::string where = "cosine_logits_backward";
  const auto X = matrix_of(s.X);
  auto dS = real_array<T>(dS_h, where, "dS");
  check_ndim(dS, {2}, where, "dS (N x Kmax)");
  auto dX = output_array<T>(dX_h, s.X_shape, where, "dX");
  const matrix_ref<T> dXm(dX.mutable_data(), X.rows, X.cols);
  auto g = class_grad_outputs(s.layout, X.cols, dT_h, dP_h, seen_grad, pseudo_grad, where);
  const auto sets = s.layout.sets();
  const auto dSm = matrix_of(dS);
  {
    py::gil_scoped_release nogil;
    cosine_logits_backward<T>(dXm, g.views, dSm, s.cache, X, sets, s.options);
  }
  return py::make_tuple(dX, g.dT, g.dP);
}

// --- focal + dice (NEL) -----------------------------------------------------------------------

template <real_scalar T>
struct focal_dice_state {
  using value_type = T;
  carray<T> S;
  carray<std::int32_t> labels;
  std::vector<py::ssize_t> S_shape;
  class_layout<T> layout;  // class counts only (no weights)
  focal_dice_options options;
  focal_dice_cache<T> cache;
  double loss = 0;
};

template <real_scalar T>
py::tuple focal_dice_forward_impl(py::handle S_h, py::handle labels_h, std::int64_t num_seen,
                                  py::handle rows_h, py::handle poff_h,
                                  const focal_dice_options& o) {
  const std::string where = "focal_dice_forward";
  auto s = std::make_shared<focal_dice_state<T>>();
  s->S = real_array<T>(S_h, where, "S");
  check_ndim(s->S, {2}, where, "S (N x Kmax)");
  s->S_shape = shape_vector(s->S);
  s->labels = label_array(labels_h, where, "labels");
  const auto S = matrix_of(s->S);
  s->layout.seen_rows = count_arg(where, "num_seen", num_seen);
  s->layout.row_offsets = offsets_arg(rows_h, S.rows, where, "row_offsets");
  if (!poff_h.is_none()) {
    s->layout.pseudo_offsets = offsets_arg(poff_h, 0, where, "pseudo_offsets");
    s->layout.pseudo_rows = s->layout.pseudo_offsets.empty() ? 0 : s->layout.pseudo_offsets.back();
  }
  s->options = o;
  const auto sets = s->layout.sets();
  T loss{};
  {
    py::gil_scoped_release nogil;
    focal_dice_forward<T>(loss, s->cache, S, labels_span(s->labels), sets, s->options);
  }
  s->loss = double(loss);
  return py::make_tuple(s->loss, make_cache(s));
}

// --- InfoNCE ----------------------------------------------------------------------------------

template <real_scalar T>
struct info_nce_state {
  using value_type = T;
  carray<T> Q, K;
  carray<std::int32_t> targets;
  info_nce_options options;
  info_nce_cache<T> cache;
  double loss = 0;
};

// --- BCE --------------------------------------------------------------------------------------

template <real_scalar T>
struct bce_state {
  using value_type = T;
  carray<T> Z, Y;
  std::vector<py::ssize_t> Z_shape;
  double loss = 0;
};

// --- docstrings -------------------------------------------------------------------------------

constexpr const char* glm_forward_doc =
    R"doc(GLM loss (DESIGN.md §2.2): the teacher's CLS attends over the student's features; the pooled,
normalised vector g_b must match n(c_b) against the batch's CLS tokens and the bank (InfoNCE).

Args:
    R: (B, P, D) student features, or (B*P, D) with image b owning rows [b*P, (b+1)*P).
    C: (B, D) teacher CLS tokens (constants: no gradient).
    bank: a ClsBank of the same dtype read as extra keys (push the batch's C after the step),
        or None.
    pool: 'attention' (the paper), 'mean', 'dense' (every pixel a row against the keys) or
        'selective' (mean of the fraction rho of pixels most similar to the CLS).
    tau: InfoNCE temperature; rho: 'selective' fraction in (0, 1]; eps: normalisation epsilon.
    threads: OpenMP threads (0 = default); block_rows: 'dense' rows per block.
    check_finite: raise on NaN/Inf in R and C.

Returns:
    (loss, GlmCache).)doc";

constexpr const char* backward_doc_tail = R"doc(

Gradient arrays given by keyword are **added into** (C-contiguous, writeable, the call's dtype
and shape); missing ones are allocated as zeros. The GIL is released while computing.)doc";

constexpr const char* accumulate_doc = R"doc(

accumulate=False: dX (dR) is written, not added into, and never read: the caller need not
zero it (the class-weight gradients dT, dP are still added into).)doc";

}  // namespace

inline void bind_losses(py::module_& m) {
  py::class_<py_bank>(m, "ClsBank",
                      "FIFO bank of the last `capacity` CLS tokens, stored L2-normalised (GLM's "
                      "extra InfoNCE keys, DESIGN.md §2.2). Row 0 is the oldest.")
      .def(py::init([](std::int64_t capacity, std::int64_t width, py::object dtype) {
             const auto c = count_arg("ClsBank", "capacity", capacity);
             const auto w = count_arg("ClsBank", "width", width);
             const py::dtype dt = py::dtype::from_args(dtype);
             py_bank b;
             if (dt.num() == py::dtype::of<float>().num())
               b.bank = cls_bank<float>(c, w);
             else if (dt.num() == py::dtype::of<double>().num())
               b.bank = cls_bank<double>(c, w);
             else
               throw py::value_error("ClsBank: dtype must be float32 or float64");
             return b;
           }),
           "capacity"_a, "width"_a, "dtype"_a = py::dtype::of<float>(),
           "A bank of `capacity` tokens of width `width` (> 0), float32 or float64.")
      .def_property_readonly(
          "capacity",
          [](const py_bank& b) { return std::visit([](auto& x) { return x.capacity(); }, b.bank); })
      .def_property_readonly(
          "width",
          [](const py_bank& b) { return std::visit([](auto& x) { return x.width(); }, b.bank); })
      .def_property_readonly(
          "size",
          [](const py_bank& b) { return std::visit([](auto& x) { return x.size(); }, b.bank); })
      .def("__len__",
           [](const py_bank& b) { return std::visit([](auto& x) { return x.size(); }, b.bank); })
      .def_property_readonly("dtype",
                             [](const py_bank& b) {
                               return b.f32() ? py::dtype::of<float>() : py::dtype::of<double>();
                             })
      .def(
          "push",
          [](py_bank& b, array_like C) {
            std::visit(
                [&](auto& bank) {
                  using T = bank_scalar<decltype(bank)>;
                  auto a = real_array<T>(C, "ClsBank.push", "C");
                  check_ndim(a, {1, 2}, "ClsBank.push", "C (n x D)");
                  const auto v = matrix_of(a);
                  py::gil_scoped_release nogil;
                  bank.push(v);
                },
                b.bank);
          },
          "C"_a, "Pushes the rows of C (n, D) as n(c); the oldest leave when full.")
      .def(
          "rows",
          [](const py_bank& b) {
            return std::visit(
                [](auto& bank) -> py::array {
                  using T = bank_scalar<decltype(bank)>;
                  py::array_t<T> out({static_cast<py::ssize_t>(bank.size()),
                                      static_cast<py::ssize_t>(bank.width())});
                  bank.copy_to(out.mutable_data());
                  return out;
                },
                b.bank);
          },
          "A copy of the bank's rows (size, width), oldest first.")
      .def(
          "clear", [](py_bank& b) { std::visit([](auto& x) { x.clear(); }, b.bank); },
          "Empties the bank.")
      .def("__repr__", [](const py_bank& b) {
        return std::visit(
            [&](auto& x) {
              return "ClsBank(capacity=" + std::to_string(x.capacity()) +
                     ", width=" + std::to_string(x.width()) + ", size=" + std::to_string(x.size()) +
                     ", dtype=" + (b.f32() ? "float32" : "float64") + ")";
            },
            b.bank);
      });

  // --- GLM ----------------------------------------------------------------------------------
  bind_cache<glm_state>(m, "GlmCache", "What glm_backward needs (keeps references to R and C).");
  auto glm_opts = [](const std::string& pool, double tau, double rho, double eps, int threads,
                     std::int64_t block_rows, bool check_finite) {
    glm_options o;
    o.pool = parse_pool(pool);
    o.tau = tau;
    o.rho = rho;
    o.eps = eps;
    o.threads = threads;
    o.block_rows = count_arg("glm", "block_rows", block_rows);
    o.check_finite = check_finite;
    return o;
  };
  m.def(
      "glm_forward",
      [glm_opts](array_like R, array_like C, py::object bank, const std::string& pool, double tau,
                 double rho, double eps, int threads, std::int64_t block_rows, bool check_finite) {
        const auto o = glm_opts(pool, tau, rho, eps, threads, block_rows, check_finite);
        return is_float32(R) ? glm_forward_impl<float>(R, C, bank, o, false, 1, py::none())
                             : glm_forward_impl<double>(R, C, bank, o, false, 1, py::none());
      },
      glm_forward_doc, "R"_a, "C"_a, "bank"_a = py::none(), py::kw_only(), "pool"_a = "attention",
      "tau"_a = 0.07, "rho"_a = 0.25, "eps"_a = 1e-12, "threads"_a = 0, "block_rows"_a = 128,
      "check_finite"_a = false);
  m.def("glm_backward", &glm_backward_py,
        (std::string("GLM backward: dR += dloss * dL/dR (R's shape). C and the bank get no "
                     "gradient.") +
         backward_doc_tail + accumulate_doc)
            .c_str(),
        "cache"_a, "dloss"_a = 1.0, py::kw_only(), "dR"_a = py::none(), "accumulate"_a = true);
  m.def(
      "glm_forward_backward",
      [glm_opts](array_like R, array_like C, py::object bank, const std::string& pool, double tau,
                 double rho, double eps, int threads, std::int64_t block_rows, bool check_finite,
                 double dloss, array_like dR, bool accumulate) {
        auto o = glm_opts(pool, tau, rho, eps, threads, block_rows, check_finite);
        o.accumulate = accumulate;
        return is_float32(R) ? glm_forward_impl<float>(R, C, bank, o, true, dloss, dR)
                             : glm_forward_impl<double>(R, C, bank, o, true, dloss, dR);
      },
      (std::string("GLM forward and backward in one call (one fused pass for 'dense'); "
                   "arguments as glm_forward.\n\nReturns:\n    (loss, dR) with dR += dloss * "
                   "dL/dR.") +
       backward_doc_tail + accumulate_doc)
          .c_str(),
      "R"_a, "C"_a, "bank"_a = py::none(), py::kw_only(), "pool"_a = "attention", "tau"_a = 0.07,
      "rho"_a = 0.25, "eps"_a = 1e-12, "threads"_a = 0, "block_rows"_a = 128,
      "check_finite"_a = false, "dloss"_a = 1.0, "dR"_a = py::none(), "accumulate"_a = true);

  // --- cosine CE ----------------------------------------------------------------------------
  bind_cache<cosine_ce_state>(m, "CosineCECache",
                              "What cosine_ce_backward needs (keeps references to the inputs).");
  auto ce_opts = [](double alpha, double beta, double eps, int threads, std::int64_t block_rows,
                    bool check_finite) {
    cosine_ce_options o;
    o.alpha = alpha;
    o.beta = beta;
    o.eps = eps;
    o.threads = threads;
    o.block_rows = count_arg("cosine_ce", "block_rows", block_rows);
    o.check_finite = check_finite;
    return o;
  };
  constexpr const char* ce_doc =
      R"doc(Cosine cross-entropy with per-image class sets (DESIGN.md §2.1), fused: the N x K logits are
never stored. Row i of image b is scored against W_b = [seen ; pseudo_b]:
S_i = [alpha cos(x_i, t_k)]_k ++ [beta cos(x_i, p_m)]_m,  L = sum_i w_i (lse(S_i) - S_i,y_i) / sum w.

Args:
    X: (N, D) features.
    labels: (N,) integers in [-1, K_b): class of the row's image's class set (seen classes
        0..Ks-1, then the image's pseudo classes), -1 ignored.
    seen: (Ks, D) seen text embeddings (shared by every image).
    pseudo: (sum M_b, D) stacked pseudo prototypes, or None.
    row_offsets: B + 1 offsets, image b owns rows [row_offsets[b], row_offsets[b+1])
        (default: one image).
    pseudo_offsets: B + 1 offsets into pseudo (default with one image: all of pseudo).
    weights: (N,) row weights >= 0, or None (all 1).
    alpha, beta: scales of the seen and pseudo blocks (1/tau); eps: normalisation epsilon.
    threads, block_rows, check_finite: as elsewhere.

Returns:
    (loss, CosineCECache).)doc";
  m.def(
      "cosine_ce_forward",
      [ce_opts](array_like X, array_like labels, array_like seen, array_like pseudo,
                array_like row_offsets, array_like pseudo_offsets, array_like weights, double alpha,
                double beta, double eps, int threads, std::int64_t block_rows, bool check_finite) {
        const auto o = ce_opts(alpha, beta, eps, threads, block_rows, check_finite);
        return is_float32(X) ? cosine_ce_forward_impl<float>(X, labels, seen, pseudo, row_offsets,
                                                             pseudo_offsets, weights, o)
                             : cosine_ce_forward_impl<double>(X, labels, seen, pseudo, row_offsets,
                                                              pseudo_offsets, weights, o);
      },
      ce_doc, "X"_a, "labels"_a, "seen"_a, "pseudo"_a = py::none(), py::kw_only(),
      "row_offsets"_a = py::none(), "pseudo_offsets"_a = py::none(), "weights"_a = py::none(),
      "alpha"_a = 1 / 0.07, "beta"_a = 1 / 0.07, "eps"_a = 1e-12, "threads"_a = 0,
      "block_rows"_a = 128, "check_finite"_a = false);
  m.def(
      "cosine_ce_backward",
      [](const any_cache<cosine_ce_state>& c, double dloss, array_like dX, array_like dT,
         array_like dP, bool seen_grad, bool pseudo_grad, bool accumulate) {
        return std::visit(
            [&](const auto& s) {
              return cosine_ce_backward_impl(*s, dloss, dX, dT, dP, seen_grad, pseudo_grad,
                                             accumulate, false, "cosine_ce_backward");
            },
            c.state);
      },
      (std::string("Cosine CE backward: dX += dloss dL/dX; with seen_grad (or a given dT) dT += "
                   "dloss dL/dT; with pseudo_grad (default, when there are pseudo rows, or a "
                   "given dP) dP += dloss dL/dP.\n\nReturns:\n    (dX, dT or None, dP or None).") +
       backward_doc_tail + accumulate_doc)
          .c_str(),
      "cache"_a, "dloss"_a = 1.0, py::kw_only(), "dX"_a = py::none(), "dT"_a = py::none(),
      "dP"_a = py::none(), "seen_grad"_a = false, "pseudo_grad"_a = true, "accumulate"_a = true);
  m.def(
      "cosine_ce_forward_backward",
      [ce_opts](array_like X, array_like labels, array_like seen, array_like pseudo,
                array_like row_offsets, array_like pseudo_offsets, array_like weights, double alpha,
                double beta, double eps, int threads, std::int64_t block_rows, bool check_finite,
                double dloss, array_like dX, array_like dT, array_like dP, bool seen_grad,
                bool pseudo_grad, bool accumulate) {
        const auto o = ce_opts(alpha, beta, eps, threads, block_rows, check_finite);
        auto run = [&](auto tag) {
          using T = decltype(tag);
          const std::string where = "cosine_ce_forward_backward";
          auto s = cosine_ce_inputs<T>(X, labels, seen, pseudo, row_offsets, pseudo_offsets,
                                       weights, o, where);
          return cosine_ce_backward_impl(*s, dloss, dX, dT, dP, seen_grad, pseudo_grad, accumulate,
                                         true, where);
        };
        return is_float32(X) ? run(float{}) : run(double{});
      },
      (std::string("Cosine CE loss and gradients in one pass (the fast path); arguments as "
                   "cosine_ce_forward and cosine_ce_backward.\n\nReturns:\n    (loss, dX, dT or "
                   "None, dP or None).") +
       backward_doc_tail + accumulate_doc)
          .c_str(),
      "X"_a, "labels"_a, "seen"_a, "pseudo"_a = py::none(), py::kw_only(),
      "row_offsets"_a = py::none(), "pseudo_offsets"_a = py::none(), "weights"_a = py::none(),
      "alpha"_a = 1 / 0.07, "beta"_a = 1 / 0.07, "eps"_a = 1e-12, "threads"_a = 0,
      "block_rows"_a = 128, "check_finite"_a = false, "dloss"_a = 1.0, "dX"_a = py::none(),
      "dT"_a = py::none(), "dP"_a = py::none(), "seen_grad"_a = false, "pseudo_grad"_a = true,
      "accumulate"_a = true);

  // --- cosine logits ------------------------------------------------------------------------
  bind_cache<cosine_logits_state>(m, "CosineLogitsCache",
                                  "What cosine_logits_backward needs (normalised rows and "
                                  "classes; keeps a reference to X).");
  m.def(
      "cosine_logits_forward",
      [](array_like X, array_like seen, array_like pseudo, array_like row_offsets,
         array_like pseudo_offsets, double alpha, double beta, double eps, int threads) {
        cosine_logits_options o;
        o.alpha = alpha;
        o.beta = beta;
        o.eps = eps;
        o.threads = threads;
        return is_float32(X) ? cosine_logits_forward_impl<float>(X, seen, pseudo, row_offsets,
                                                                 pseudo_offsets, o)
                             : cosine_logits_forward_impl<double>(X, seen, pseudo, row_offsets,
                                                                  pseudo_offsets, o);
      },
      R"doc(Cosine logits with per-image class sets (DESIGN.md §2.1), unfused (NEL's input):
S[i, :K_b] = [alpha cos(x_i, t_k)]_k ++ [beta cos(x_i, p_m)]_m for row i of image b; entries
>= K_b are 0. Arguments as cosine_ce_forward.

Returns:
    (S (N, Kmax), CosineLogitsCache).)doc",
      "X"_a, "seen"_a, "pseudo"_a = py::none(), py::kw_only(), "row_offsets"_a = py::none(),
      "pseudo_offsets"_a = py::none(), "alpha"_a = 1 / 0.07, "beta"_a = 1 / 0.07, "eps"_a = 1e-12,
      "threads"_a = 0);
  m.def(
      "cosine_logits_backward",
      [](const any_cache<cosine_logits_state>& c, array_like dS, array_like dX, array_like dT,
         array_like dP, bool seen_grad, bool pseudo_grad) {
        return std::visit(
            [&](const auto& s) {
              return cosine_logits_backward_impl(*s, dS, dX, dT, dP, seen_grad, pseudo_grad);
            },
            c.state);
      },
      (std::string("Cosine logits backward given dS (N, Kmax) (entries >= K_b not read): dX += "
                   "dL/dX, and dT, dP as in cosine_ce_backward.\n\nReturns:\n    (dX, dT or None, "
                   "dP or None).") +
       backward_doc_tail)
          .c_str(),
      "cache"_a, "dS"_a, py::kw_only(), "dX"_a = py::none(), "dT"_a = py::none(),
      "dP"_a = py::none(), "seen_grad"_a = false, "pseudo_grad"_a = true);

  // --- focal + dice (NEL) -------------------------------------------------------------------
  bind_cache<focal_dice_state>(m, "FocalDiceCache",
                               "What focal_dice_backward needs (dice sums; keeps S, labels).")
      .def_property_readonly(
          "focal",
          [](const any_cache<focal_dice_state>& c) {
            return std::visit([](auto& s) { return s->cache.focal; }, c.state);
          },
          "the focal term (before its weight)")
      .def_property_readonly(
          "dice",
          [](const any_cache<focal_dice_state>& c) {
            return std::visit([](auto& s) { return s->cache.dice; }, c.state);
          },
          "the dice term (before its weight)");
  m.def(
      "focal_dice_forward",
      [](array_like S, array_like labels, std::int64_t num_seen, array_like row_offsets,
         array_like pseudo_offsets, double alpha, double gamma, double dice_smooth,
         double focal_weight, double dice_weight, int threads) {
        focal_dice_options o;
        o.alpha = alpha;
        o.gamma = gamma;
        o.dice_smooth = dice_smooth;
        o.focal_weight = focal_weight;
        o.dice_weight = dice_weight;
        o.threads = threads;
        return is_float32(S) ? focal_dice_forward_impl<float>(S, labels, num_seen, row_offsets,
                                                              pseudo_offsets, o)
                             : focal_dice_forward_impl<double>(S, labels, num_seen, row_offsets,
                                                               pseudo_offsets, o);
      },
      R"doc(ZegCLIP's non-mutually-exclusive loss, NEL (DESIGN.md §2.1): sigmoid focal loss (mean over
valid rows of the per-row class mean) plus dice loss (mean over every class of every image with
valid rows) on the cosine logits S, per image's class set.

Args:
    S: (N, Kmax) logits (cosine_logits_forward's output); only the first K_b entries of a row of
        image b are read.
    labels: (N,) integers in [-1, K_b).
    num_seen: Ks, the seen classes every image scores.
    row_offsets: B + 1 row offsets (default: one image).
    pseudo_offsets: B + 1 offsets of the images' pseudo classes (M_b = difference), or None.
    alpha, gamma: focal loss; dice_smooth: sigma_s; focal_weight, dice_weight: lambda_f,
        lambda_d; threads: OpenMP threads.

Returns:
    (loss, FocalDiceCache).)doc",
      "S"_a, "labels"_a, "num_seen"_a, py::kw_only(), "row_offsets"_a = py::none(),
      "pseudo_offsets"_a = py::none(), "alpha"_a = 0.25, "gamma"_a = 2.0, "dice_smooth"_a = 1.0,
      "focal_weight"_a = 1.0, "dice_weight"_a = 1.0, "threads"_a = 0);
  m.def(
      "focal_dice_backward",
      [](const any_cache<focal_dice_state>& c, double dloss, array_like dS_h) {
        return std::visit(
            [&](const auto& s) -> py::object {
              using T = typename std::decay_t<decltype(*s)>::value_type;
              auto dS = output_array<T>(dS_h, s->S_shape, "focal_dice_backward", "dS");
              const auto S = matrix_of(s->S);
              const matrix_ref<T> dSm(dS.mutable_data(), S.rows, S.cols);
              const auto sets = s->layout.sets();
              {
                py::gil_scoped_release nogil;
                focal_dice_backward<T>(dSm, T(dloss), s->cache, S, labels_span(s->labels), sets,
                                       s->options);
              }
              return dS;
            },
            c.state);
      },
      (std::string("Focal + dice backward: dS += dloss dL/dS (entries >= K_b untouched).") +
       backward_doc_tail)
          .c_str(),
      "cache"_a, "dloss"_a = 1.0, py::kw_only(), "dS"_a = py::none());

  // --- InfoNCE ------------------------------------------------------------------------------
  bind_cache<info_nce_state>(m, "InfoNCECache", "What info_nce_backward needs (probabilities).");
  m.def(
      "info_nce_forward",
      [](array_like Q_h, array_like K_h, array_like targets_h, double tau) {
        auto run = [&](auto tag) {
          using T = decltype(tag);
          const std::string where = "info_nce_forward";
          auto s = std::make_shared<info_nce_state<T>>();
          s->Q = real_array<T>(Q_h, where, "Q");
          check_ndim(s->Q, {2}, where, "Q (n x D)");
          s->K = real_array<T>(K_h, where, "K");
          check_ndim(s->K, {2}, where, "K (m x D)");
          s->targets = label_array(targets_h, where, "targets");
          s->options.tau = tau;
          const auto Q = matrix_of(s->Q), K = matrix_of(s->K);
          T loss{};
          {
            py::gil_scoped_release nogil;
            info_nce_forward<T>(loss, s->cache, Q, K, labels_span(s->targets), s->options);
          }
          s->loss = double(loss);
          return py::make_tuple(s->loss, make_cache(s));
        };
        return is_float32(Q_h) ? run(float{}) : run(double{});
      },
      R"doc(InfoNCE (DESIGN.md §2.2): loss = -mean_i log softmax_j(<q_i, k_j> / tau)[targets_i]; queries
and keys are used as given (normalise them first for cosines). Single-threaded (tiny sizes).

Args:
    Q: (n, D) queries.  K: (m, D) keys.  targets: (n,) integers in [0, m).  tau: temperature.

Returns:
    (loss, InfoNCECache).)doc",
      "Q"_a, "K"_a, "targets"_a, py::kw_only(), "tau"_a = 0.07);
  m.def(
      "info_nce_backward",
      [](const any_cache<info_nce_state>& c, double dloss, array_like dQ_h, array_like dK_h,
         bool key_grad) {
        return std::visit(
            [&](const auto& s) -> py::tuple {
              using T = typename std::decay_t<decltype(*s)>::value_type;
              const std::string where = "info_nce_backward";
              auto dQ = output_array<T>(dQ_h, shape_vector(s->Q), where, "dQ");
              const auto Q = matrix_of(s->Q), K = matrix_of(s->K);
              const matrix_ref<T> dQm(dQ.mutable_data(), Q.rows, Q.cols);
              py::object dK_out = py::none();
              matrix_ref<T> dKm;
              if (key_grad || !dK_h.is_none()) {
                auto dK = output_array<T>(dK_h, shape_vector(s->K), where, "dK");
                dKm = matrix_ref<T>(dK.mutable_data(), K.rows, K.cols);
                dK_out = dK;
              }
              {
                py::gil_scoped_release nogil;
                info_nce_backward<T>(dQm, dKm, T(dloss), s->cache, Q, K, labels_span(s->targets),
                                     s->options);
              }
              return py::make_tuple(dQ, dK_out);
            },
            c.state);
      },
      (std::string("InfoNCE backward: dQ += dloss dL/dQ; with key_grad (or a given dK) dK += "
                   "dloss dL/dK.\n\nReturns:\n    (dQ, dK or None).") +
       backward_doc_tail)
          .c_str(),
      "cache"_a, "dloss"_a = 1.0, py::kw_only(), "dQ"_a = py::none(), "dK"_a = py::none(),
      "key_grad"_a = false);

  // --- BCE ----------------------------------------------------------------------------------
  bind_cache<bce_state>(m, "BCECache", "What bce_with_logits_backward needs (Z and Y).");
  m.def(
      "bce_with_logits_forward",
      [](array_like Z_h, array_like Y_h) {
        auto run = [&](auto tag) {
          using T = decltype(tag);
          const std::string where = "bce_with_logits_forward";
          auto s = std::make_shared<bce_state<T>>();
          s->Z = real_array<T>(Z_h, where, "Z");
          s->Y = real_array<T>(Y_h, where, "Y");
          s->Z_shape = shape_vector(s->Z);
          if (shape_vector(s->Y) != s->Z_shape)
            throw py::value_error(where + ": Y has shape " + shape_of(s->Y) + ", Z has " +
                                  shape_of(s->Z));
          const auto Z = matrix_of(s->Z), Y = matrix_of(s->Y);
          T loss{};
          {
            py::gil_scoped_release nogil;
            bce_with_logits_forward<T>(loss, Z, Y);
          }
          s->loss = double(loss);
          return py::make_tuple(s->loss, make_cache(s));
        };
        return is_float32(Z_h) ? run(float{}) : run(double{});
      },
      R"doc(Binary cross-entropy on logits, mean over all elements (DESIGN.md §2.1), stable for any
finite logit: l(z, y) = max(z, 0) - z y + log(1 + exp(-|z|)). Single-threaded.

Args:
    Z: logits, any shape.  Y: targets in [0, 1], Z's shape.

Returns:
    (loss, BCECache).)doc",
      "Z"_a, "Y"_a);
  m.def(
      "bce_with_logits_backward",
      [](const any_cache<bce_state>& c, double dloss, array_like dZ_h) {
        return std::visit(
            [&](const auto& s) -> py::object {
              using T = typename std::decay_t<decltype(*s)>::value_type;
              auto dZ = output_array<T>(dZ_h, s->Z_shape, "bce_with_logits_backward", "dZ");
              const auto Z = matrix_of(s->Z), Y = matrix_of(s->Y);
              const matrix_ref<T> dZm(dZ.mutable_data(), Z.rows, Z.cols);
              {
                py::gil_scoped_release nogil;
                bce_with_logits_backward<T>(dZm, T(dloss), Z, Y);
              }
              return dZ;
            },
            c.state);
      },
      (std::string("BCE backward: dZ += dloss (sigmoid(Z) - Y) / Z.size.") + backward_doc_tail)
          .c_str(),
      "cache"_a, "dloss"_a = 1.0, py::kw_only(), "dZ"_a = py::none());
}

}  // namespace zss::python
