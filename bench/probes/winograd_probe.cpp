// SPDX-License-Identifier: Apache-2.0
// Probe, not part of the build (issue #16): Winograd F(2×2, 3×3) forward against the direct
// im2col + register-blocked GEMM the encoder runs, one image, one thread, on the default encoder's
// stride-1 layers with more than 3 input channels: L3 (32×32×64 → 64) and L5 (16×16×128 → 128),
// padding 1, fused bias + ReLU. Prints both times, the Winograd split (input transform, the 16
// GEMMs of `tiles × C` by `C × C_out`, output transform) and the largest difference to the direct
// output (a check that the prototype computes the same convolution). The weight transform is done
// once outside the timing (once per layer call, shared by the batch). Results and the decision:
// docs/EXPERIMENTS.md, Stop 10.
//
//   g++ -std=c++20 -O3 -march=native -Iinclude -isystem /usr/include/eigen3 \
//       bench/probes/winograd_probe.cpp -o /tmp/winograd_probe && /tmp/winograd_probe
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "zss/nn/conv2d.hpp"
using namespace zss;
using namespace zss::detail;
static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
template <class F>
double bench(F&& f) {
  std::vector<double> t;
  for (int r = 0; r < 21; ++r) {
    double t0 = now();
    int it = 0;
    do {
      f();
      ++it;
    } while (now() - t0 < 0.02);
    t.push_back((now() - t0) / it);
  }
  std::sort(t.begin(), t.end());
  return t[10];
}
int main() {
  struct S {
    int h, c, co;
    const char* name;
  } shapes[] = {{32, 64, 64, "L3"}, {16, 128, 128, "L5"}};
  std::mt19937 gen(1);
  std::normal_distribution<float> nd;
  for (auto s : shapes) {
    const int H = s.h, C = s.c, Co = s.co, K = 9 * C, P = H * H, T = H / 2;  // T x T tiles
    std::vector<float> in(P * C), w(K * Co), bias(Co), out(P * Co), out2(P * Co);
    for (auto* v : {&in, &w, &bias})
      for (auto& x : *v) x = nd(gen);
    const auto g = conv2d_geometry::square(H, H, C, 3, 1, 1);
    const index_t tile = conv2d_tile_rows<float>(g, conv2d_tile_bytes);
    std::vector<float> col(tile * K), wp(K * Co);
    conv2d_pack_weight(wp.data(), w.data(), K, Co);
    auto direct = [&] {
      conv2d_forward_image(out.data(), in.data(), w.data(), bias.data(), g, Co,
                           conv2d_epilogue::bias_relu, col.data(), tile, wp.data());
    };
    // Weight transform U[xi] (C x Co) = G g G^T, packed per xi (once per layer call: excluded).
    std::vector<float> U(16 * C * Co), Up(16 * C * Co);
    for (int ci = 0; ci < C; ++ci)
      for (int o = 0; o < Co; ++o) {
        float gg[3][3], t[4][3];
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) gg[a][b] = w[((a * 3 + b) * C + ci) * Co + o];
        for (int b = 0; b < 3; ++b) {
          t[0][b] = gg[0][b];
          t[1][b] = .5f * (gg[0][b] + gg[1][b] + gg[2][b]);
          t[2][b] = .5f * (gg[0][b] - gg[1][b] + gg[2][b]);
          t[3][b] = gg[2][b];
        }
        for (int a = 0; a < 4; ++a) {
          float u[4] = {t[a][0], .5f * (t[a][0] + t[a][1] + t[a][2]),
                        .5f * (t[a][0] - t[a][1] + t[a][2]), t[a][2]};
          for (int b = 0; b < 4; ++b) U[((a * 4 + b) * C + ci) * Co + o] = u[b];
        }
      }
    for (int xi = 0; xi < 16; ++xi)
      detail::gemm_pack_b(Up.data() + xi * C * Co, U.data() + xi * C * Co, Co, 1, C, Co);
    const int NT = T * T;
    std::vector<float> V(16 * NT * C), M(16 * NT * Co);
    auto in_at = [&](int y, int x, int c) {
      return (y < 0 || x < 0 || y >= H || x >= H) ? 0.f : in[(y * H + x) * C + c];
    };
    std::vector<float> zeros(C, 0.f);
    auto input_tf = [&] {
      const size_t st = size_t(NT) * C;
      for (int ty = 0; ty < T; ++ty)
        for (int tx = 0; tx < T; ++tx) {
          const int t = ty * T + tx;
          const float* p[4][4];
          for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) {
              const int y = 2 * ty - 1 + a, x = 2 * tx - 1 + b;
              p[a][b] =
                  (y < 0 || x < 0 || y >= H || x >= H) ? zeros.data() : in.data() + (y * H + x) * C;
            }
          float* v = V.data() + t * C;
          for (int a = 0; a < 4; ++a) {
            // row a of B^T d, then times B
            const float* r0;
            (void)r0;
#pragma GCC ivdep
            for (int c = 0; c < C; ++c) {
              float e0, e1, e2, e3;
#define ROW(b)                        \
  (a == 0   ? p[0][b][c] - p[2][b][c] \
   : a == 1 ? p[1][b][c] + p[2][b][c] \
   : a == 2 ? p[2][b][c] - p[1][b][c] \
            : p[1][b][c] - p[3][b][c])
              e0 = ROW(0);
              e1 = ROW(1);
              e2 = ROW(2);
              e3 = ROW(3);
#undef ROW
              float* va = v + (a * 4) * st;
              va[c] = e0 - e2;
              va[st + c] = e1 + e2;
              va[2 * st + c] = e2 - e1;
              va[3 * st + c] = e1 - e3;
            }
          }
        }
    };
    auto gemms = [&] {
      for (int xi = 0; xi < 16; ++xi)
        detail::gemm<float>(NT, Co, C, V.data() + xi * NT * C, C, 1, Up.data() + xi * C * Co,
                            M.data() + xi * NT * Co, Co, false);
    };
    auto output_tf = [&] {
      const size_t st = size_t(NT) * Co;
      for (int t = 0; t < NT; ++t) {
        const int ty = t / T, tx = t % T;
        const float* m = M.data() + t * Co;
        float* y00 = out2.data() + ((2 * ty) * H + 2 * tx) * Co;
        float* y01 = y00 + Co;
        float* y10 = y00 + H * Co;
        float* y11 = y10 + Co;
#pragma GCC ivdep
        for (int o = 0; o < Co; ++o) {
          float r[2][4];
          for (int b = 0; b < 4; ++b) {
            r[0][b] = m[b * st + o] + m[(4 + b) * st + o] + m[(8 + b) * st + o];
            r[1][b] = m[(4 + b) * st + o] - m[(8 + b) * st + o] - m[(12 + b) * st + o];
          }
          y00[o] = std::max(r[0][0] + r[0][1] + r[0][2] + bias[o], 0.f);
          y01[o] = std::max(r[0][1] - r[0][2] - r[0][3] + bias[o], 0.f);
          y10[o] = std::max(r[1][0] + r[1][1] + r[1][2] + bias[o], 0.f);
          y11[o] = std::max(r[1][1] - r[1][2] - r[1][3] + bias[o], 0.f);
        }
      }
    };
    direct();
    input_tf();
    gemms();
    output_tf();
    double err = 0, mx = 0;
    for (int i = 0; i < P * Co; ++i) {
      err = std::max(err, double(std::abs(out[i] - out2[i])));
      mx = std::max(mx, double(std::abs(out[i])));
    }
    const double td = bench(direct), ti = bench(input_tf), tg = bench(gemms), to = bench(output_tf);
    const double fl = 2.0 * P * K * Co;
    printf(
        "%s %dx%dx%d->%d: direct %.3f ms (%.1f GFLOP/s) | winograd %.3f ms = input %.3f + 16 GEMMs "
        "%.3f (%.1f GFLOP/s of their own) + output %.3f | direct/winograd %.2f | max |diff| %.2e "
        "of max |y| %.1f\n",
        s.name, H, H, C, Co, td * 1e3, fl / td / 1e9, (ti + tg + to) * 1e3, ti * 1e3, tg * 1e3,
        2.0 * 16 * NT * C * Co / tg / 1e9, to * 1e3, td / (ti + tg + to), err, mx);
  }
}
