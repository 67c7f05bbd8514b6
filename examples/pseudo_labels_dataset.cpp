// SPDX-License-Identifier: Apache-2.0
// zss-pseudo-labels --data DIR --split S --out OUT: the PLM pseudo labels (DESIGN §2.3) of every
// image of a dataset split, sharded across MPI ranks (items r, r + R, …; dist/shard.hpp) and
// across the threads of a rank, one output file per image written atomically, resumable.
//
// Output OUT/<stem>.npy: int32 h × w on the teacher's token grid — a seen pixel's dataset class
// id, K + m for pseudo class m of that image, −1 ignored (unseen classes are hidden from the
// clustering's labels, as in training). A rerun keeps every output that reads as a complete map
// (a valid .npy of int32 h × w whose values are −1, seen class ids or ≥ K) and recomputes missing
// or corrupt ones; temporaries left by a killed run are removed. At the end rank 0 writes a JSON
// summary (images, computed, skipped, pseudo classes per image, time, throughput per rank).
// Each output depends only on its image and the options, so any number of ranks and threads
// writes the same bytes.
#include "pseudo_labels_dataset.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/processes.hpp"
#include "zss/data/dataset.hpp"
#include "zss/dist/shard.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/npy.hpp"
#include "zss/train/dataset.hpp"

namespace zss::tools {

namespace {

namespace fs = std::filesystem;
using T = float;
using clock_type = std::chrono::steady_clock;

/// The pseudo classes of a complete output, or −1 when the file is missing or not a complete map.
std::int64_t complete_output(const fs::path& file, index_t h, index_t w, std::int32_t K,
                             const train::class_table<T>& cls) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return -1;
  try {
    const auto head = read_npy_header(file);
    if (head.dtype != npy_dtype::int32 || head.rank() != 2 || head.shape[0] != h ||
        head.shape[1] != w)
      return -1;
    const auto m = load_npy<std::int32_t, 2>(file);
    std::set<std::int32_t> pseudo;
    for (auto l : m) {
      if (l >= K)
        pseudo.insert(l);
      else if (l != -1 && (l < 0 || !cls.seen_flag[index_t(l)]))
        return -1;
    }
    return std::int64_t(pseudo.size());
  } catch (const std::exception&) {
    return -1;  // unreadable, truncated, malformed: redo it
  }
}

/// Removes the atomic writer's temporaries `.<stem>.npy.tmp-*` of the given stems in `dir`.
index_t remove_stale_temporaries(const fs::path& dir, const std::set<std::string>& names) {
  index_t removed = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    const auto pos = name.find(".tmp-");
    if (name.size() < 2 || name[0] != '.' || pos == std::string::npos) continue;
    if (!names.count(name.substr(1, pos - 1))) continue;
    std::error_code ec;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace

int run_pseudo_labels_dataset(int* argc, char*** argv, const dataset_mode_options& o) {
  examples::processes procs(argc, argv);
  try {
    const auto t0 = clock_type::now();
    const auto d = data::open_dataset(o.data, {o.split});
    const auto& s = d.split(o.split);
    const train::class_table<T> cls(d.text_embeddings<T>(), d.seen);
    const auto K = std::int32_t(d.classes());
    const auto Ks = std::int32_t(cls.seen_ids.size());
    const fs::path out(o.out);
    if (procs.root()) {
      std::error_code ec;
      fs::create_directories(out, ec);
      if (ec || !fs::is_directory(out))
        throw std::runtime_error("cannot create the output folder '" + o.out + "'" +
                                 (ec ? ": " + ec.message() : ""));
    }
    procs.barrier();
    const auto mine = dist::strided_items(s.size(), index_t(procs.rank()), index_t(procs.size()));
    std::set<std::string> names;
    for (auto i : mine) names.insert(s.stems[i] + ".npy");
    const index_t stale = remove_stale_temporaries(out, names);

    std::vector<std::int64_t> pseudo(mine.size(), 0);
    std::vector<char> computed(mine.size(), 0);
    std::atomic<std::int64_t> written{0};
    pseudo_label_options p = o.pseudo;
    p.threads = 1;
    const auto t_start = clock_type::now();
    parallel_for(mine.size(), o.threads, [&](index_t j, int) {
      const index_t i = mine[j];
      const fs::path file = out / (s.stems[i] + ".npy");
      const auto existing = complete_output(file, s.grid_h, s.grid_w, K, cls);
      if (existing >= 0) {
        pseudo[j] = existing;
        return;
      }
      const auto it = data::load_item<T>(d, s, i);
      const index_t h = it.tokens.shape()[0], w = it.tokens.shape()[1];
      const train::teacher_view<T> v{matrix_ref<const T>(it.tokens.data(), h * w, d.dim), h, w,
                                     &it.labels};
      auto fused = train::fused_token_labels(v, cls, p, i, d.tokens_normalized);
      std::set<std::int32_t> distinct;
      for (auto& l : fused) {
        if (l >= Ks)
          distinct.insert(l), l = K + (l - Ks);  // pseudo class m → K + m
        else if (l >= 0)
          l = cls.seen_ids[index_t(l)];  // seen index → class id
      }
      tensor<std::int32_t, 2> map = tensor<std::int32_t, 2>::from_shape({h, w});
      std::copy(fused.begin(), fused.end(), map.data());
      const std::string bytes = xt::dump_npy(map);
      const bool kill =
          o.kill_after >= 0 && procs.rank() == o.kill_rank && written.fetch_add(1) == o.kill_after;
      write_file_atomically(file, [&](std::ostream& os) {
        if (kill) {  // the test hook: die in the middle of this file
          os.write(bytes.data(), std::streamsize(bytes.size() / 2));
          os.flush();
          std::raise(SIGKILL);
        }
        os.write(bytes.data(), std::streamsize(bytes.size()));
      });
      pseudo[j] = std::int64_t(distinct.size());
      computed[j] = 1;
    });
    const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();

    // The summary: per-rank counts gathered to every rank (rows of 4 doubles).
    std::int64_t my_computed = 0, my_pseudo = 0;
    for (index_t j = 0; j < mine.size(); ++j) my_computed += computed[j], my_pseudo += pseudo[j];
    const double row[4] = {double(mine.size()), double(my_computed), seconds, double(stale)};
    aligned_vector<double> rows;
    std::vector<index_t> offsets;
    procs.allgather_rows(matrix_ref<const double>(row, 1, 4), rows, offsets);
    // Histogram of pseudo classes per image (exact integer sums over ranks).
    std::map<std::int64_t, std::int64_t> histogram_local;
    for (auto m : pseudo) ++histogram_local[m];
    std::int64_t max_m = 0;
    for (auto m : pseudo) max_m = std::max(max_m, m);
    std::vector<std::int64_t> histogram;
    {
      // The largest count over ranks, then every bin summed.
      const std::int64_t bins = [&] {
        aligned_vector<double> all;
        std::vector<index_t> off;
        const double mm = double(max_m);
        procs.allgather_rows(matrix_ref<const double>(&mm, 1, 1), all, off);
        return std::int64_t(*std::max_element(all.begin(), all.end())) + 1;
      }();
      for (std::int64_t m = 0; m < bins; ++m)
        histogram.push_back(procs.sum(histogram_local.count(m) ? histogram_local[m] : 0));
    }
    const std::int64_t images = procs.sum(std::int64_t(mine.size()));
    const std::int64_t total_computed = procs.sum(my_computed);
    const std::int64_t total_pseudo = procs.sum(my_pseudo);
    if (procs.root()) {
      nlohmann::json j;
      j["dataset"] = o.data;
      j["split"] = o.split;
      j["output"] = o.out;
      j["images"] = images;
      j["computed"] = total_computed;
      j["skipped"] = images - total_computed;
      j["pseudo_classes"] = {
          {"total", total_pseudo},
          {"per_image_mean", images ? double(total_pseudo) / double(images) : 0.0},
          {"histogram", histogram}};
      j["grid"] = {s.grid_h, s.grid_w};
      j["ranks"] = procs.size();
      j["threads_per_rank"] = resolve_threads(o.threads);
      double slowest = 0;
      nlohmann::json per_rank = nlohmann::json::array();
      for (int r = 0; r < procs.size(); ++r) {
        const double* q = rows.data() + 4 * r;
        slowest = std::max(slowest, q[2]);
        per_rank.push_back({{"rank", r},
                            {"images", std::int64_t(q[0])},
                            {"computed", std::int64_t(q[1])},
                            {"seconds", q[2]},
                            {"computed_per_second", q[2] > 0 ? q[1] / q[2] : 0.0},
                            {"stale_temporaries_removed", std::int64_t(q[3])}});
      }
      j["per_rank"] = per_rank;
      j["seconds"] = slowest;
      j["seconds_total"] = std::chrono::duration<double>(clock_type::now() - t0).count();
      j["computed_per_second"] = slowest > 0 ? double(total_computed) / slowest : 0.0;
      j["options"] = {
          {"windows", p.kmeans.windows},       {"max_iter", p.kmeans.max_iter},
          {"spherical", p.kmeans.spherical},   {"lambda", p.fusion.lambda},
          {"min_tokens", p.fusion.min_tokens}, {"ignored_fraction", p.token.ignored_fraction}};
      const fs::path summary = o.summary.empty() ? out / "summary.json" : fs::path(o.summary);
      write_file_atomically(summary, [&](std::ostream& os) { os << j.dump(2) << '\n'; });
      if (!o.quiet)
        std::printf(
            "%lld images of %s/%s: %lld computed, %lld kept; %.2f pseudo classes per image; "
            "%.2f s on %d rank%s (%.1f images/s) -> %s, %s\n",
            (long long)images, o.data.c_str(), o.split.c_str(), (long long)total_computed,
            (long long)(images - total_computed),
            images ? double(total_pseudo) / double(images) : 0.0, slowest, procs.size(),
            procs.size() > 1 ? "s" : "", slowest > 0 ? double(total_computed) / slowest : 0.0,
            o.out.c_str(), summary.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    return procs.fail("zss-pseudo-labels", e);
  }
}

}  // namespace zss::tools
