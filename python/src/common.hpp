// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file python/src/common.hpp
 * What every binding of the `zss` Python module shares: NumPy arrays in (without a copy when they
 * already are C-contiguous float32/float64) and out (C++ buffers handed to NumPy without a copy),
 * dtype rules, checked counts and output arrays that gradients are added into.
 *
 * Rules (documented to users in the module docstring):
 *  - A call computes in the dtype of its main array: float32 stays float32, float64 stays
 *    float64, any other dtype (integers, float16) is converted to float64. The call's other float
 *    arrays must have the same dtype (a ValueError otherwise: nothing is silently narrowed).
 *  - C-contiguous arrays of the right dtype are used in place; other layouts are copied once
 *    into a C-contiguous array first.
 *  - Label arrays: any integer dtype; int32 is used in place, others are converted (checked to
 *    fit in int32).
 *  - Arrays the call writes into (`dX=` …) must already be C-contiguous, writeable and of the
 *    call's dtype and shape: a converted copy would lose the writes.
 *  - Every `std::invalid_argument` of the library becomes a `ValueError` with the same message
 *    (pybind11's translation); the GIL is released while the library computes.
 */
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zss/core/config.hpp"
#include "zss/core/tensor.hpp"

namespace zss::python {

namespace py = pybind11;
using namespace pybind11::literals;

/**
 * An argument that takes anything array-like (ndarray, list, scalar, None): converted by the
 * helpers below, so the dtype rules are ours, not pybind11's overload conversions. Its name in
 * signatures and docstrings is `numpy.typing.ArrayLike`.
 */
struct array_like {
  py::object obj;
  operator py::handle() const { return obj; }
  bool is_none() const { return obj.is_none(); }
};

/// A C-contiguous NumPy array of T.
template <class T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// "float32", "int64", … (the dtype's NumPy name).
inline std::string dtype_name(const py::array& a) {
  return py::str(a.dtype().attr("name")).cast<std::string>();
}

/// `h` as a NumPy array (no copy when it is one; lists and scalars become arrays).
inline py::array as_array(py::handle h) {
  if (py::isinstance<py::array>(h)) return py::reinterpret_borrow<py::array>(h);
  return py::array::ensure(h);
}

/// True when the call's main argument makes it compute in float32: a float32 ndarray.
inline bool is_float32(py::handle h) {
  return py::isinstance<py::array>(h) &&
         py::reinterpret_borrow<py::array>(h).dtype().num() == py::dtype::of<float>().num();
}

/**
 * `h` as a C-contiguous array of T: the same object when it already is one, else a converted
 * copy. A float array of the other float dtype is refused (ValueError naming both), so a call
 * never narrows float64 to float32 behind the caller's back.
 */
template <real_scalar T>
carray<T> real_array(py::handle h, const std::string& where, const std::string& name) {
  const bool given_array = py::isinstance<py::array>(h);
  py::array a = as_array(h);
  if (!a) throw py::value_error(where + ": " + name + " is not convertible to an array");
  // Lists and scalars have no dtype of their own: they are converted to the call's.
  if (given_array && a.dtype().kind() == 'f' && a.dtype().num() != py::dtype::of<T>().num())
    throw py::value_error(where + ": " + name + " is " + dtype_name(a) +
                          " but the call computes in " +
                          (std::is_same_v<T, float> ? "float32" : "float64") +
                          " (the dtype of its main array); pass every float array in one dtype");
  if (a.dtype().kind() == 'c' || a.dtype().kind() == 'O' || a.dtype().kind() == 'U' ||
      a.dtype().kind() == 'S')
    throw py::value_error(where + ": " + name + " has dtype " + dtype_name(a) +
                          ", expected real numbers");
  auto out = carray<T>::ensure(a);
  if (!out)
    throw py::value_error(where + ": " + name + " (dtype " + dtype_name(a) +
                          ") cannot be converted to " +
                          (std::is_same_v<T, float> ? "float32" : "float64"));
  return out;
}

/// `h` as C-contiguous int32 labels: in place when int32, else converted after a range check.
inline carray<std::int32_t> label_array(py::handle h, const std::string& where,
                                        const std::string& name) {
  py::array a = as_array(h);
  if (!a) throw py::value_error(where + ": " + name + " is not convertible to an array");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error(where + ": " + name + " has dtype " + dtype_name(a) +
                          ", expected integers");
  if (a.dtype().num() == py::dtype::of<std::int32_t>().num())
    return carray<std::int32_t>::ensure(a);
  // Check the range on a lossless int64 view (uint64 above 2^63 cannot be a label either).
  if (kind == 'u' && a.dtype().itemsize() == 8) {
    auto u = carray<std::uint64_t>::ensure(a);
    const auto* p = u.data();
    for (py::ssize_t i = 0; i < u.size(); ++i)
      if (p[i] > std::uint64_t(std::numeric_limits<std::int32_t>::max()))
        throw py::value_error(where + ": " + name + " has value " + std::to_string(p[i]) +
                              " at flat index " + std::to_string(i) +
                              ", outside the int32 range of labels");
  } else if (a.dtype().itemsize() >= 4) {
    auto w = carray<std::int64_t>::ensure(a);
    const auto* p = w.data();
    for (py::ssize_t i = 0; i < w.size(); ++i)
      if (p[i] < std::numeric_limits<std::int32_t>::min() ||
          p[i] > std::numeric_limits<std::int32_t>::max())
        throw py::value_error(where + ": " + name + " has value " + std::to_string(p[i]) +
                              " at flat index " + std::to_string(i) +
                              ", outside the int32 range of labels");
  }
  return carray<std::int32_t>::ensure(a);
}

/// A count argument: a ValueError (not pybind11's TypeError) for a negative value.
inline index_t count_arg(const std::string& where, const char* name, std::int64_t v) {
  if (v < 0) throw py::value_error(where + ": " + name + " must be >= 0, got " + std::to_string(v));
  return static_cast<index_t>(v);
}

/// "(3, 4)" of an array's shape.
inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

/// Checks the rank of `a` is one of `ranks` (ValueError naming the shape).
inline void check_ndim(const py::array& a, std::initializer_list<int> ranks,
                       const std::string& where, const std::string& name) {
  for (int r : ranks)
    if (a.ndim() == r) return;
  std::string want;
  for (int r : ranks) want += (want.empty() ? "" : " or ") + std::to_string(r);
  throw py::value_error(where + ": " + name + " has shape " + shape_of(a) + ", expected rank " +
                        want);
}

/// A C-contiguous matrix view of an array: rows = product of all but the last extent.
template <class T>
matrix_ref<const T> matrix_of(const carray<T>& a) {
  if (a.ndim() == 0) return {a.data(), 1, 1};
  const index_t cols = static_cast<index_t>(a.shape(a.ndim() - 1));
  index_t rows = 1;
  for (py::ssize_t i = 0; i + 1 < a.ndim(); ++i) rows *= static_cast<index_t>(a.shape(i));
  return {a.data(), rows, cols};
}

/**
 * An array the call writes (adds) into, given by the caller or allocated when `h` is None:
 * zeros, or uninitialised when `zeroed` is false (for a call that writes every element, such as
 * a loss's backward with `accumulate=False`). A given one must be a C-contiguous, writeable
 * ndarray of T with exactly `shape`.
 */
template <real_scalar T>
py::array_t<T> output_array(py::handle h, const std::vector<py::ssize_t>& shape,
                            const std::string& where, const std::string& name, bool zeroed = true) {
  if (h.is_none()) {
    py::array_t<T> out(shape);
    if (zeroed) std::fill_n(out.mutable_data(), out.size(), T(0));
    return out;
  }
  if (!py::isinstance<py::array>(h))
    throw py::value_error(where + ": " + name + " must be a NumPy array (it is added into)");
  auto a = py::reinterpret_borrow<py::array>(h);
  const std::string want = std::is_same_v<T, float> ? "float32" : "float64";
  if (a.dtype().num() != py::dtype::of<T>().num())
    throw py::value_error(where + ": " + name + " is " + dtype_name(a) + ", expected " + want +
                          " (it is added into, so it cannot be converted)");
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error(where + ": " + name +
                          " must be C-contiguous and writeable (it is added into)");
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (std::size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error(where + ": " + name + " has shape " + shape_of(a) + ", expected " + s +
                          (shape.size() == 1 ? ",)" : ")"));
  }
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

/// The shape of an array as a vector.
inline std::vector<py::ssize_t> shape_vector(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

/**
 * Hands a C++ container to NumPy without a copy: the container moves to the heap and a capsule
 * owned by the array frees it. `shape`'s product must equal the container's size.
 */
template <class C>
py::array_t<typename C::value_type> give(C&& c, std::vector<py::ssize_t> shape) {
  using V = typename C::value_type;
  auto* heap = new C(std::forward<C>(c));
  py::capsule owner(heap, [](void* p) { delete static_cast<C*>(p); });
  if (heap->size() == 0) {  // no storage to share: a fresh empty array
    return py::array_t<V>(shape);
  }
  return py::array_t<V>(shape, heap->data(), owner);
}

/// A std::vector of counts as an int64 array (a copy: these are small per-call records).
template <class I>
py::array_t<std::int64_t> int64_array(const std::vector<I>& v) {
  py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i)
    out.mutable_data()[i] = static_cast<std::int64_t>(v[i]);
  return out;
}

/// Optional row offsets (B + 1 non-decreasing counts) from None (= one image of `rows` rows),
/// a sequence or an integer array.
inline std::vector<index_t> offsets_arg(py::handle h, index_t rows, const std::string& where,
                                        const char* name) {
  if (h.is_none()) return {0, rows};
  auto a = carray<std::int64_t>::ensure(as_array(h));
  if (!a || a.ndim() != 1)
    throw py::value_error(where + ": " + name + " must be a 1-D sequence of B + 1 offsets");
  std::vector<index_t> out(static_cast<std::size_t>(a.size()));
  for (py::ssize_t i = 0; i < a.size(); ++i)
    out[static_cast<std::size_t>(i)] = count_arg(where, name, a.data()[i]);
  return out;
}

}  // namespace zss::python

namespace pybind11::detail {
template <>
struct type_caster<zss::python::array_like> {
  PYBIND11_TYPE_CASTER(zss::python::array_like, const_name("numpy.typing.ArrayLike"));
  bool load(handle src, bool) {
    value.obj = reinterpret_borrow<object>(src);
    return true;
  }
  static handle cast(const zss::python::array_like& a, return_value_policy, handle) {
    return a.obj.inc_ref();
  }
};
}  // namespace pybind11::detail
