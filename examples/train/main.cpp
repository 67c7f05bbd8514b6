// SPDX-License-Identifier: Apache-2.0
// zss-train: CLIP-ZSS (GLM + PLM) trained from a dataset folder (data/dataset.hpp: images, labels,
// the teacher's tokens and CLS, class names, text embeddings, the unseen classes), on one process
// or data-parallel over MPI ranks (`mpirun -np N zss-train …`).
//
// With N ranks, --batch is the whole batch: rank r trains on its block of every step's images
// (dist::block_range), the losses are means over the whole batch, the gradients are summed over
// the ranks in rank order and every rank applies the same update (train/trainer.hpp), so N ranks
// compute what one process computes with the same --batch, up to rounding. PLM pseudo labels are
// computed once before training, each rank clustering its share of the images (or read from
// --pseudo-labels, the output of `zss-pseudo-labels --data`). Rank 0 prints the progress, writes
// the checkpoint (atomically) and evaluates the student on the test split; --resume needs the
// number of ranks the checkpoint was written with.
//
// Every option that changes the result is a described field (train/config.hpp and `describe`
// below); metrics.json's "config" and the checkpoint's configuration come from them.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/option_binding.hpp"
#include "common/processes.hpp"
#include "common/train_report.hpp"
#include "zss/data/dataset.hpp"
#include "zss/dist/shard.hpp"
#include "zss/eval/zero_shot.hpp"
#include "zss/io/npy.hpp"
#include "zss/train/dataset.hpp"
#include "zss/train/sampler.hpp"

namespace fs = std::filesystem;
using namespace zss;
using T = float;
using examples::clock_type;

namespace {

/// What a run's result depends on (besides the data): the trainer and the inference calibration.
struct run_options {
  train::trainer_options train;
  double calibration = 0;  ///< γ subtracted from the seen classes' scores at inference
};

template <class V>
void describe(V& v, run_options& o) {
  describe(v, o.train);
  v.field("calibration", o.calibration, "gamma subtracted from seen classes' scores at inference",
          checks::finite(), "calibration");
}

/// How the program runs (not part of the result).
struct control_options {
  std::string data, out, pseudo_labels, train_split = "train", test_split = "test";
  bool resume = false, quiet = false;
  index_t panels = 6;
  std::uint64_t checkpoint_every = 0;
};

/// A split held in memory.
struct split_data {
  std::vector<data::item<T>> items;
  std::vector<const tensor<float, 3>*> images() const {
    std::vector<const tensor<float, 3>*> v;
    for (const auto& it : items) v.push_back(&it.image);
    return v;
  }
  std::vector<const tensor<std::int32_t, 2>*> labels() const {
    std::vector<const tensor<std::int32_t, 2>*> v;
    for (const auto& it : items) v.push_back(&it.labels);
    return v;
  }
};

split_data load_split(const data::dataset& d, const data::split_info& s, int threads) {
  split_data out;
  out.items.resize(s.size());
  parallel_for(s.size(), threads,
               [&](index_t i, int) { out.items[i] = data::load_item<T>(d, s, i); });
  return out;
}

train::teacher_view<T> view_of(const data::item<T>& it) {
  const index_t h = it.tokens.shape()[0], w = it.tokens.shape()[1], D = it.tokens.shape()[2];
  return {matrix_ref<const T>(it.tokens.data(), h * w, D), h, w, &it.labels};
}

/**
 * The fused PLM maps (class-set labels on the teacher grid) of every training item: read from
 * `dir/<stem>.npy` (zss-pseudo-labels' output: seen class ids, K + m for pseudo class m, −1), or
 * computed with each rank clustering the items r, r + R, … and the maps gathered to every rank.
 */
std::vector<std::vector<std::int32_t>> fused_maps(const data::dataset& d, const data::split_info& s,
                                                  const split_data& tr,
                                                  const train::class_table<T>& cls,
                                                  const train::trainer_options& cfg,
                                                  const std::string& dir,
                                                  const examples::processes& procs) {
  const index_t n = s.size(), Q = s.grid_h * s.grid_w, K = d.classes(), Ks = cls.seen_ids.size();
  std::vector<std::vector<std::int32_t>> maps(n);
  if (!dir.empty()) {
    parallel_for(n, cfg.threads, [&](index_t i, int) {
      const fs::path file = fs::path(dir) / (s.stems[i] + ".npy");
      const auto m = load_npy_as<std::int32_t, 2>(file);
      if (m.shape()[0] != s.grid_h || m.shape()[1] != s.grid_w)
        throw std::invalid_argument("'" + file.string() + "' is " + shape_string(m.shape()) +
                                    ", the split's token grid " + std::to_string(s.grid_h) + " x " +
                                    std::to_string(s.grid_w));
      auto& out = maps[i];
      out.resize(Q);
      for (index_t q = 0; q < Q; ++q) {
        const auto l = m.data()[q];
        if (l < 0)
          out[q] = -1;
        else if (l < std::int32_t(K) && cls.seen_flag[index_t(l)])
          out[q] = cls.seen_index[index_t(l)];
        else if (l >= std::int32_t(K))
          out[q] = std::int32_t(Ks) + (l - std::int32_t(K));
        else
          throw std::invalid_argument("'" + file.string() + "' labels token " + std::to_string(q) +
                                      " with the unseen class " + std::to_string(l));
      }
    });
    return maps;
  }
  const auto mine = dist::strided_items(n, index_t(procs.rank()), index_t(procs.size()));
  aligned_vector<std::int32_t> local(mine.size() * Q);
  parallel_for(mine.size(), cfg.threads, [&](index_t j, int) {
    const index_t i = mine[j];
    const auto f =
        train::fused_token_labels(view_of(tr.items[i]), cls, cfg.pseudo, i, d.tokens_normalized);
    std::copy(f.begin(), f.end(), local.data() + j * Q);
  });
  aligned_vector<std::int32_t> all;
  std::vector<index_t> offsets;
  procs.allgather_rows(matrix_ref<const std::int32_t>(local.data(), mine.size(), Q), all, offsets);
  for (int r = 0; r < procs.size(); ++r)
    for (index_t j = 0; j < offsets[std::size_t(r) + 1] - offsets[std::size_t(r)]; ++j) {
      const index_t i = index_t(r) + j * index_t(procs.size());
      const std::int32_t* row = all.data() + (offsets[std::size_t(r)] + j) * Q;
      maps[i].assign(row, row + Q);
    }
  return maps;
}

int run(const run_options& ro, const control_options& o, examples::processes& procs) {
  const auto t_start = clock_type::now();
  const bool root = procs.root();
  const auto& cfg = ro.train;
  std::optional<fs::path> out_dir;
  if (!o.out.empty()) {
    out_dir = fs::path(o.out);
    if (root) {
      std::error_code ec;
      fs::create_directories(*out_dir, ec);
      if (ec || !fs::is_directory(*out_dir))
        throw std::runtime_error("cannot create the output directory '" + o.out + "'" +
                                 (ec ? ": " + ec.message() : ""));
      write_file_atomically(*out_dir / ".write-test", [](std::ostream& s) { s << "ok\n"; });
      fs::remove(*out_dir / ".write-test", ec);
    }
  }
  if (o.resume && !out_dir)
    throw std::invalid_argument("--resume needs --out DIR (the checkpoint is DIR/checkpoint.zss)");

  // The data: every rank validates the folder and holds the training split; rank 0 the test split.
  std::vector<std::string> splits = {o.train_split};
  if (root) splits.push_back(o.test_split);
  const auto d = data::open_dataset(o.data, splits);
  const auto& train_split = d.split(o.train_split);
  const train::class_table<T> cls(d.text_embeddings<T>(), d.seen);
  require(cfg.encoder.embed_dim == d.dim, "the student's width must be the text width");
  if (root)
    std::fprintf(stderr,
                 "dataset %s: %zu classes (%zu seen), D %zu; %s: %zu images %zu x %zu, "
                 "tokens %zu x %zu; %d rank%s\n",
                 o.data.c_str(), d.classes(), cls.seen_ids.size(), d.dim, o.train_split.c_str(),
                 train_split.size(), train_split.height, train_split.width, train_split.grid_h,
                 train_split.grid_w, procs.size(), procs.size() > 1 ? "s" : "");
  const auto t_load = clock_type::now();
  const split_data tr_data = load_split(d, train_split, cfg.threads);

  // PLM targets of every training image (each rank clusters its share).
  const auto t_targets = clock_type::now();
  const auto maps = fused_maps(d, train_split, tr_data, cls, cfg, o.pseudo_labels, procs);
  std::vector<image_targets<T>> targets(train_split.size());
  parallel_for(train_split.size(), cfg.threads, [&](index_t i, int) {
    targets[i] = train::make_image_targets(view_of(tr_data.items[i]), cls, cfg, true, i,
                                           d.tokens_normalized, &maps[i]);
  });
  // Every rank holds every image's targets, so the dataset-level means agree across ranks.
  if (cfg.plm.gap_shift) {
    const auto gap =
        shift_modality_gap(std::span<image_targets<T>>(targets), as_matrix(cls.seen_text));
    if (root) examples::print_gap_shift(gap);
  }
  index_t pseudo = 0;
  for (const auto& t : targets) pseudo += t.pseudo_count;
  if (root)
    std::fprintf(stderr,
                 "loaded in %.2f s; PLM pseudo labels: %zu pseudo classes over %zu images "
                 "(%.2f s)\n",
                 std::chrono::duration<double>(t_targets - t_load).count(), pseudo, targets.size(),
                 std::chrono::duration<double>(clock_type::now() - t_targets).count());

  // Training.
  const auto t_train = clock_type::now();
  train::trainer<T> tr(cfg, cls.seen_text);
  auto app = ro;
  const std::string app_text =
      option_fields(app).to_text() + "ranks = " + std::to_string(procs.size()) + "\n";
  const fs::path ckpt = out_dir ? *out_dir / "checkpoint.zss" : fs::path();
  if (o.resume) {
    const auto sections = tr.load(ckpt);
    const checkpoint_section* mine = nullptr;
    for (const auto& sec : sections)
      if (sec.name == "zss-train.config") mine = &sec;
    if (!mine)
      throw std::invalid_argument("--resume: " + ckpt.string() + " was not written by zss-train");
    const std::string text(mine->bytes.begin(), mine->bytes.end());
    const auto pos = text.rfind("ranks = ");
    const std::string ranks = pos == std::string::npos ? "?" : text.substr(pos + 8);
    if (ranks != std::to_string(procs.size()) + "\n")
      throw std::invalid_argument("--resume: " + ckpt.string() + " was written by " +
                                  ranks.substr(0, ranks.size() - 1) + " ranks, this run has " +
                                  std::to_string(procs.size()) +
                                  " (a data-parallel run resumes with the same number of ranks)");
    const auto diff = first_difference(text.substr(0, pos), option_fields(app));
    if (!diff.empty())
      throw std::invalid_argument("--resume: " + ckpt.string() + " holds another run: " + diff);
    if (root)
      std::fprintf(stderr, "resumed from %s at step %llu\n", ckpt.c_str(),
                   (unsigned long long)tr.steps_done());
  }
  auto save = [&] {
    if (root)
      tr.save(ckpt, {checkpoint_section{"zss-train.config", {app_text.begin(), app_text.end()}}});
  };
  examples::progress prog;
  prog.quiet = o.quiet || !root;
  prog.label = procs.size() > 1 ? std::to_string(procs.size()) + " ranks" : "";
  prog.total = cfg.steps();
  prog.first = tr.steps_done();
  const index_t B = std::min<index_t>(cfg.batch, train_split.size());
  require(B >= index_t(procs.size()), "--batch (" + std::to_string(B) + ") is smaller than the " +
                                          std::to_string(procs.size()) + " ranks");
  train::batch_sampler sampler(train_split.size(), B, cfg.seed);
  const auto mine = dist::block_range(B, index_t(procs.rank()), index_t(procs.size()));
  procs.with_collective([&](auto& comm) {
    procs.broadcast_parameters(tr.parameters());
    for (std::uint64_t s = tr.steps_done(); s < cfg.steps(); ++s) {
      const auto idx = sampler.indices(s);
      const auto flips = sampler.flips(s, cfg.flip);
      std::vector<const tensor<float, 3>*> images;
      std::vector<const T*> cls_rows;
      std::vector<const image_targets<T>*> tg;
      for (index_t b = mine.begin; b < mine.end; ++b) {
        images.push_back(&tr_data.items[idx[b]].image);
        cls_rows.push_back(tr_data.items[idx[b]].cls.data());
        tg.push_back(&targets[idx[b]]);
      }
      const auto batch = train::make_batch<T>(
          std::span<const tensor<float, 3>* const>(images), std::span<const T* const>(cls_rows),
          d.dim, std::move(tg), std::span<const char>(flips.data() + mine.begin, mine.size()));
      const auto l = tr.step(batch, comm);
      prog.update(s + 1, l, B);
      if (out_dir && o.checkpoint_every > 0 && (s + 1) % o.checkpoint_every == 0 &&
          s + 1 < cfg.steps())
        save();
    }
  });
  if (out_dir) save();
  const double train_seconds = std::chrono::duration<double>(clock_type::now() - t_train).count();
  if (!root) return 0;

  // Evaluation on rank 0: the student and the teacher's own zero-shot segmentation.
  const auto& test_split = d.split(o.test_split);
  const split_data te = load_split(d, test_split, cfg.threads);
  eval::predict_options ip;
  ip.calibration = ro.calibration;
  ip.threads = cfg.threads;
  std::vector<tensor<std::int32_t, 2>> predictions;
  const auto images = te.images();
  const auto labels = te.labels();
  const auto metrics = train::evaluate_student<T>(
      std::span<const tensor<float, 3>* const>(images),
      std::span<const tensor<std::int32_t, 2>* const>(labels), d.text_embeddings<T>(), cls,
      tr.student(), ip, 32, out_dir ? &predictions : nullptr);
  eval::confusion_matrix tcm(d.classes());
  const auto text = d.text_embeddings<T>();
  for (const auto& it : te.items) {
    const auto v = view_of(it);
    const auto pred = eval::classify_tokens<T>(v.tokens, v.grid_h, v.grid_w, text,
                                               std::span<const std::int32_t>(cls.all_ids),
                                               test_split.height, test_split.width);
    tcm.add(it.labels.data(), pred.data(), pred.size());
  }
  const auto teacher = eval::compute_metrics(tcm, cls.seen());
  examples::print_table({{"this run", metrics}, {"teacher zero-shot (tokens)", teacher}});
  const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();
  std::printf("\n%.1f s in total (training %.1f s on %d rank%s)\n", seconds, train_seconds,
              procs.size(), procs.size() > 1 ? "s" : "");
  if (out_dir) {
    auto j = examples::metrics_json(metrics);
    j["config"] = examples::to_json(option_fields(app));
    j["seconds"] = seconds;
    j["ranks"] = procs.size();
    j["teacher"] = examples::metrics_json(teacher);
    j["class_names"] = d.class_names;
    examples::write_json(*out_dir / "metrics.json", j);
    const index_t panels = std::min<index_t>(o.panels, te.items.size());
    for (index_t i = 0; i < panels; ++i) {
      const auto& it = te.items[i];
      const auto v = view_of(it);
      const auto fused = train::fused_token_labels(v, cls, cfg.pseudo, i, d.tokens_normalized);
      tensor<std::int32_t, 2> fm = tensor<std::int32_t, 2>::from_shape({v.grid_h, v.grid_w});
      std::copy(fused.begin(), fused.end(), fm.begin());
      examples::write_panel(*out_dir / ("panel_" + std::to_string(i) + ".png"), it.image, it.labels,
                            fm, v.grid_h, v.grid_w, predictions[i], cls);
    }
    std::printf("wrote %s/metrics.json, %zu panels, checkpoint.zss\n", out_dir->c_str(), panels);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<examples::processes> procs;
  try {
    procs.emplace(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zss-train: error: %s\n", e.what());
    return 1;
  }
  CLI::App app{
      "zss-train: CLIP-ZSS (GLM + PLM) from a dataset folder; under mpirun, data-parallel over the "
      "ranks (--batch is the whole batch). Prints mIoU(S), mIoU(U), hIoU of the test split next to "
      "the teacher's own zero-shot segmentation."};
  run_options ro;
  control_options o;
  option_fields fields(ro);
  examples::add_options(app, fields, "Configuration (stored in metrics.json and the checkpoint)");
  app.add_option("--data", o.data, "dataset folder (data/dataset.hpp; zss-toy-export writes one)")
      ->required();
  app.add_option("--train-split", o.train_split, "training split folder")->capture_default_str();
  app.add_option("--test-split", o.test_split, "test split folder")->capture_default_str();
  app.add_option("--pseudo-labels", o.pseudo_labels,
                 "read the fused PLM maps from this folder (zss-pseudo-labels --data output, made "
                 "with the same pseudo-label options) instead of computing them");
  bool recipe = false;
  app.add_flag(
      "--synth-recipe", recipe,
      "preset: the synthesizer recipe of docs/EXPERIMENTS.md; options given explicitly win");
  app.add_option("--out", o.out, "write metrics.json, panel PNGs and checkpoint.zss here");
  app.add_flag("--resume", o.resume,
               "continue from DIR/checkpoint.zss (same configuration and number of ranks)");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "also save the checkpoint every N steps (0 = only at the end)")
      ->capture_default_str();
  app.add_option("--panels", o.panels, "test images drawn as panels with --out")
      ->capture_default_str();
  app.add_flag("--quiet", o.quiet, "no progress display");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return procs->root() ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 1);
  }
  try {
    std::vector<std::pair<option_field*, std::string>> explicit_values;
    for (auto& f : fields.all())
      if (examples::given(app, f)) explicit_values.push_back({&f, f.get()});
    if (recipe) ro.train.use_synthesizer_recipe();
    for (auto& [f, text] : explicit_values) f->set(text);
    const auto* warm = fields.find("schedule.warmup_steps");
    if (!examples::given(app, *warm))
      ro.train.schedule.warmup_steps =
          std::min(ro.train.schedule.warmup_steps, ro.train.schedule.total_steps);
    // The student's width is the text width (the class files are validated here).
    ro.train.encoder.embed_dim = data::open_dataset(o.data, {}).dim;
    ro.train.validate();
    return run(ro, o, *procs);
  } catch (const std::exception& e) {
    return procs->fail("zss-train", e);
  }
}
