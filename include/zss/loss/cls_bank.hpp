// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/cls_bank.hpp
 * The FIFO bank `V` of the last `M` (normalised) CLS tokens that GLM uses as extra InfoNCE keys
 * (DESIGN.md §2.2). The step reads it as keys *before* the batch's tokens are pushed; the
 * trainer pushes after the step.
 *
 * Legend: M capacity, D width, n rows pushed at once.
 */
#include <algorithm>
#include <string>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/normalize.hpp"

namespace zss {

/**
 * FIFO bank of the last `capacity` CLS tokens, stored L2-normalised (they are InfoNCE keys,
 * `n(c)`, DESIGN §2.2). Capacity 0 (the library default, M = 0) is a bank that stays empty.
 * Rows are read in age order: `row(0)` is the oldest.
 */
template <real_scalar T>
class cls_bank {
 public:
  cls_bank() = default;
  /// A bank of `capacity` tokens of width `width` (`width` > 0).
  cls_bank(index_t capacity, index_t width)
      : capacity_(capacity), width_(width), data_(capacity * width) {
    require(width > 0, "cls_bank: width must be > 0");
  }

  index_t capacity() const noexcept { return capacity_; }
  index_t width() const noexcept { return width_; }
  index_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ == capacity_; }
  void clear() noexcept { size_ = 0, head_ = 0; }

  /// Row `i` in age order (0 = oldest), `i < size()`.
  const T* row(index_t i) const noexcept {
    return data_.data() + ((head_ + capacity_ - size_ + i) % capacity_) * width_;
  }

  /// Copies the bank (size × width, oldest first) to `out`.
  void copy_to(T* out) const {
    for (index_t i = 0; i < size_; ++i) std::copy_n(row(i), width_, out + i * width_);
  }

  /**
   * Replaces the contents by `n` rows (n × width, oldest first) taken verbatim (already
   * normalised: a checkpoint's copy). Reading it back gives the same rows bitwise.
   * @throws std::invalid_argument when `n` exceeds the capacity.
   */
  void assign_rows(const T* rows, index_t n) {
    require(n <= capacity_, "cls_bank::assign_rows: " + std::to_string(n) +
                                " rows exceed the capacity " + std::to_string(capacity_));
    if (n > 0) std::copy_n(rows, n * width_, data_.data());
    size_ = n;
    head_ = capacity_ == 0 ? 0 : n % capacity_;
  }

  /**
   * Pushes the rows of `C` (n × width) as `n(c)`, oldest first out when full; pushing more
   * than `capacity` rows keeps the last `capacity`.
   * @throws std::invalid_argument when `C` has the wrong width.
   */
  void push(matrix_ref<const T> C, T eps = normalize_eps<T>) {
    if (C.cols != width_)
      throw std::invalid_argument("cls_bank::push: tokens have width " + std::to_string(C.cols) +
                                  ", the bank holds width " + std::to_string(width_));
    if (capacity_ == 0) return;
    for (index_t i = 0; i < C.rows; ++i) {
      normalize_row(data_.data() + head_ * width_, C.row(i), width_, eps);
      head_ = (head_ + 1) % capacity_;
      size_ = std::min(size_ + 1, capacity_);
    }
  }

 private:
  index_t capacity_ = 0, width_ = 0, size_ = 0, head_ = 0;  // head_: next slot to write
  aligned_vector<T> data_;
};

}  // namespace zss
