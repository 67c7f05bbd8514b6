// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/param_buffer.hpp
 * All parameters and their gradients in two flat, aligned buffers with named views
 * (STYLE §5, llm.c's ParameterTensors): zeroing gradients is one fill, an optimiser is one loop,
 * a gradient check is one perturbation loop, save/load is one walk over the name table, and an
 * MPI all-reduce of the gradients is one call on `grads()`.
 *
 * Usage: declare every tensor with `add(name, shape)` (returns its id), then `allocate()`; views
 * stay valid until the buffer is destroyed or re-allocated. Each entry starts on a 64-byte
 * boundary (its offset is rounded up), so kernels may use aligned loads on entry starts.
 */
#include <algorithm>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

template <real_scalar T>
class param_buffer {
 public:
  struct entry {
    std::string name;
    std::vector<index_t> shape;
    index_t offset = 0;  ///< into values()/grads()
    index_t size = 0;    ///< product of shape
  };

  /// Declares a tensor; returns its id. Throws on duplicate names or after `allocate()`.
  index_t add(const std::string& name, std::vector<index_t> shape) {
    require(!allocated_, "param_buffer::add(" + name + "): buffer already allocated");
    for (const auto& e : entries_)
      require(e.name != name, "param_buffer::add: duplicate parameter name '" + name + "'");
    index_t size = 1;
    for (auto s : shape) size *= s;
    entries_.push_back({name, std::move(shape), round_up(total_, lanes_per_line<T>), size});
    total_ = entries_.back().offset + size;
    return entries_.size() - 1;
  }

  /// Allocates zeroed values and gradients for everything declared.
  void allocate() {
    values_.assign(total_, T(0));
    grads_.assign(total_, T(0));
    allocated_ = true;
  }

  bool allocated() const noexcept { return allocated_; }
  /// Number of scalars including alignment gaps (the gaps stay zero).
  index_t size() const noexcept { return total_; }
  /// Number of parameters (excluding gaps).
  index_t parameter_count() const noexcept {
    index_t n = 0;
    for (const auto& e : entries_) n += e.size;
    return n;
  }
  const std::vector<entry>& entries() const noexcept { return entries_; }

  /// Id of `name`; throws if unknown.
  index_t id(const std::string& name) const {
    for (index_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].name == name) return i;
    throw std::invalid_argument("param_buffer: no parameter named '" + name + "'");
  }

  T* value(index_t id) noexcept { return values_.data() + entries_[id].offset; }
  const T* value(index_t id) const noexcept { return values_.data() + entries_[id].offset; }
  T* grad(index_t id) noexcept { return grads_.data() + entries_[id].offset; }
  const T* grad(index_t id) const noexcept { return grads_.data() + entries_[id].offset; }

  /// Rank-2 view (rows = shape[0], cols = product of the rest) of a value or gradient.
  matrix_ref<T> value_matrix(index_t id) noexcept { return as_rows(values_.data(), id); }
  matrix_ref<T> grad_matrix(index_t id) noexcept { return as_rows(grads_.data(), id); }

  T* values() noexcept { return values_.data(); }
  const T* values() const noexcept { return values_.data(); }
  T* grads() noexcept { return grads_.data(); }
  const T* grads() const noexcept { return grads_.data(); }

  void zero_grad() noexcept { std::fill(grads_.begin(), grads_.end(), T(0)); }

 private:
  matrix_ref<T> as_rows(T* base, index_t id) noexcept {
    const auto& e = entries_[id];
    const index_t rows = e.shape.empty() ? 1 : e.shape[0];
    const index_t cols = rows == 0 ? 0 : e.size / rows;
    return {base + e.offset, rows, cols};
  }

  std::vector<entry> entries_;
  index_t total_ = 0;
  bool allocated_ = false;
  aligned_vector<T> values_, grads_;
};

}  // namespace zss
