// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/conv_reference.hpp
 * Direct (naive-loop) references for the nn layers, written from the definitions and sharing
 * no code with the library: NHWC convolution with zero padding, in double.
 */
#include <cstddef>
#include <vector>

namespace zss::test {

/// Direct convolution of one NHWC image. w is (kh, kw, C, Co), b is Co (or empty). Returns
/// OH×OW×Co.
template <class T>
std::vector<double> conv2d_direct(const T* x, std::size_t H, std::size_t W, std::size_t C,
                                  const T* w, const T* b, std::size_t Co, std::size_t kh,
                                  std::size_t kw, std::size_t sh, std::size_t sw, std::size_t ph,
                                  std::size_t pw, std::size_t& OH, std::size_t& OW) {
  OH = (H + 2 * ph - kh) / sh + 1;
  OW = (W + 2 * pw - kw) / sw + 1;
  std::vector<double> out(OH * OW * Co, 0.0);
  for (std::size_t oy = 0; oy < OH; ++oy)
    for (std::size_t ox = 0; ox < OW; ++ox)
      for (std::size_t o = 0; o < Co; ++o) {
        double s = b ? double(b[o]) : 0.0;
        for (std::size_t ky = 0; ky < kh; ++ky)
          for (std::size_t kx = 0; kx < kw; ++kx) {
            const long iy = long(oy * sh + ky) - long(ph), ix = long(ox * sw + kx) - long(pw);
            if (iy < 0 || ix < 0 || iy >= long(H) || ix >= long(W)) continue;
            for (std::size_t c = 0; c < C; ++c)
              s += double(x[(std::size_t(iy) * W + std::size_t(ix)) * C + c]) *
                   double(w[((ky * kw + kx) * C + c) * Co + o]);
          }
        out[(oy * OW + ox) * Co + o] = s;
      }
  return out;
}

}  // namespace zss::test
