// SPDX-License-Identifier: Apache-2.0
// PLM pseudo labels (DESIGN §2.3): the whole batched pipeline, and its parts on one image.
//
// Data: B = 16 images of 32 × 32 tokens, D = 512, pixel labels at 512 × 512 (16 × 16 pixels per
// token). Each image is a Voronoi scene of 10 regions with their own random direction plus noise
// (norm 0.3); regions whose centre lies in the left 60 % are seen classes (0..5), the rest of the
// image is ignored (255), so fusion has both seen classes and pseudo masks to make.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "zss/cluster/mask_fusion.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/core/random.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/token_labels.hpp"

namespace {

constexpr zss::index_t B = 16, h = 32, w = 32, D = 512, P = 16;  // P pixels per token side

struct batch_data {
  zss::tensor<float, 4> tokens;         // B × h × w × D
  zss::tensor<std::int32_t, 3> pixels;  // B × (h·P) × (w·P)
};

const batch_data& data() {
  static const batch_data d = [] {
    batch_data out;
    out.tokens = zss::tensor<float, 4>::from_shape({B, h, w, D});
    out.pixels = zss::tensor<std::int32_t, 3>::from_shape({B, h * P, w * P});
    constexpr int R = 10;
    for (zss::index_t b = 0; b < B; ++b) {
      zss::rng g(1000 + b);
      double cy[R], cx[R];
      std::vector<std::vector<float>> dir(R, std::vector<float>(D));
      for (int r = 0; r < R; ++r) {
        cy[r] = g.uniform<double>(0, double(h));
        cx[r] = g.uniform<double>(0, double(w));
        for (auto& v : dir[r]) v = g.normal<float>() / std::sqrt(float(D));
      }
      auto region = [&](double y, double x) {
        int best = 0;
        double bd = 1e300;
        for (int r = 0; r < R; ++r) {
          const double dd = (y - cy[r]) * (y - cy[r]) + (x - cx[r]) * (x - cx[r]);
          if (dd < bd) bd = dd, best = r;
        }
        return best;
      };
      for (zss::index_t y = 0; y < h; ++y)
        for (zss::index_t x = 0; x < w; ++x) {
          const int r = region(double(y) + 0.5, double(x) + 0.5);
          float* z = &out.tokens(b, y, x, 0);
          for (zss::index_t c = 0; c < D; ++c)
            z[c] = dir[r][c] + 0.3f * g.normal<float>() / std::sqrt(float(D));
        }
      for (zss::index_t y = 0; y < h * P; ++y)
        for (zss::index_t x = 0; x < w * P; ++x) {
          const int r = region((double(y) + 0.5) / P, (double(x) + 0.5) / P);
          out.pixels(b, y, x) = cx[r] < 0.6 * double(w) ? r % 6 : 255;
        }
    }
    return out;
  }();
  return d;
}

zss::pseudo_label_options params(int threads) {
  zss::pseudo_label_options p;
  p.kmeans.windows = {4, 8, 16};
  p.threads = threads;
  return p;
}

void set_images(benchmark::State& s, zss::index_t images) {
  s.counters["images/s"] = benchmark::Counter(
      double(images), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

/// The batch: token labels, multi-scale K-Means, mask fusion and resizing to 512 × 512, per image.
void BM_PseudoLabels(benchmark::State& s) {
  const auto& d = data();
  const auto p = [&] {
    auto q = params(int(s.range(0)));
    q.out_h = h * P;
    q.out_w = w * P;
    return q;
  }();
  std::size_t pseudo = 0;
  for (auto _ : s) {
    auto r = zss::pseudo_labels_batch(d.tokens, d.pixels, 6, p);
    pseudo = 0;
    for (const auto& x : r) pseudo += x.num_pseudo;
    benchmark::DoNotOptimize(r.data());
  }
  set_images(s, B);
  s.counters["pseudo/img"] = double(pseudo) / double(B);
}
BENCHMARK(BM_PseudoLabels)
    ->ArgName("threads")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

/// The K-Means part alone for one image (3 scales, window seeds), single thread.
void BM_PseudoLabels_KMeansOneImage(benchmark::State& s) {
  const auto& d = data();
  zss::multiscale_options mp;
  mp.windows = {4, 8, 16};
  mp.threads = 1;
  const zss::matrix_ref<const float> Z(d.tokens.data(), h * w, D);
  for (auto _ : s) {
    auto scales = zss::multiscale_kmeans<float>(Z, h, w, mp);
    benchmark::DoNotOptimize(scales.data());
  }
  set_images(s, 1);
}
BENCHMARK(BM_PseudoLabels_KMeansOneImage)->Unit(benchmark::kMillisecond);

/// Mask fusion alone for one image (given its three clusterings).
void BM_MaskFusion(benchmark::State& s) {
  const auto& d = data();
  zss::multiscale_options mp;
  mp.windows = {4, 8, 16};
  mp.threads = 1;
  const zss::matrix_ref<const float> Z(d.tokens.data(), h * w, D);
  const auto scales = zss::multiscale_kmeans<float>(Z, h, w, mp);
  zss::tensor<std::int32_t, 2> px = zss::tensor<std::int32_t, 2>::from_shape({h * P, w * P});
  std::copy(d.pixels.data(), d.pixels.data() + px.size(), px.data());
  const auto tl = zss::token_labels(px, h, w);
  zss::mask_fusion_options fp;
  for (auto _ : s) {
    auto r = zss::fuse_masks<float>(Z, std::span<const std::int32_t>(tl.data(), tl.size()), scales,
                                    6, fp);
    benchmark::DoNotOptimize(r.labels.data());
  }
  set_images(s, 1);
}
BENCHMARK(BM_MaskFusion)->Unit(benchmark::kMicrosecond);

/// Pixel labels 512 × 512 → token labels 32 × 32 for one image.
void BM_TokenLabels(benchmark::State& s) {
  const auto& d = data();
  zss::tensor<std::int32_t, 2> px = zss::tensor<std::int32_t, 2>::from_shape({h * P, w * P});
  std::copy(d.pixels.data(), d.pixels.data() + px.size(), px.data());
  for (auto _ : s) {
    auto t = zss::token_labels(px, h, w);
    benchmark::DoNotOptimize(t.data());
  }
  set_images(s, 1);
}
BENCHMARK(BM_TokenLabels)->Unit(benchmark::kMicrosecond);

}  // namespace
