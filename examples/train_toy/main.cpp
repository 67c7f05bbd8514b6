// SPDX-License-Identifier: Apache-2.0
// zss-train-toy: CLIP-ZSS end to end on the toy world (DESIGN.md §1, §2, §4). A compact student
// learns to segment classes it never saw labelled, taught by a simulated CLIP teacher through
// GLM (global, CLS attention + InfoNCE) and PLM (pseudo labels from multi-scale K-Means + mask
// fusion, prototypes from the synthesizer). At the end: mIoU(S), mIoU(U), hIoU next to the
// seen-only baseline and the teacher's own zero-shot segmentation.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "zss/core/atomic_file.hpp"
#include "zss/core/image_io.hpp"
#include "zss/train/toy.hpp"

namespace fs = std::filesystem;
using namespace zss;
using T = float;
using clock_type = std::chrono::steady_clock;

namespace {

struct run_result {
  eval::segmentation_metrics metrics;
  double seconds = 0;
  std::vector<tensor<std::int32_t, 2>> predictions;
};

std::string arm_name(const train::module_config& m) {
  if (m.glm && m.plm) return "GLM+PLM";
  if (m.glm) return "+GLM";
  if (m.plm) return "+PLM";
  return "baseline (seen only)";
}

nlohmann::json config_json(const train::trainer_config& c, const toy::world_params& wp, double calibration) {
  nlohmann::json j;
  j["glm"] = c.modules.glm, j["plm"] = c.modules.plm, j["nel"] = c.modules.nel;
  j["lambda_ce"] = c.modules.lambda_ce, j["lambda_nel"] = c.modules.lambda_nel;
  j["lambda_glm"] = c.modules.lambda_glm, j["lambda_syn"] = c.modules.lambda_syn;
  j["pool"] = c.pool == glm_pool::attention ? "attention" : c.pool == glm_pool::mean ? "mean"
              : c.pool == glm_pool::dense   ? "dense"
                                            : "selective";
  j["glm_tau"] = c.glm_tau, j["bank_size"] = c.bank_size;
  j["windows"] = c.pseudo.windows, j["fusion_lambda"] = c.pseudo.lambda, j["min_tokens"] = c.pseudo.min_tokens;
  j["alpha"] = c.alpha, j["beta"] = c.beta, j["syn_tau"] = c.syn_tau, j["syn_delta"] = c.syn_delta, j["region_tokens"] = c.region_tokens;
  j["prototypes"] = c.prototypes == train::prototype_source::synthesizer ? "synthesizer" : "teacher-tokens";
  j["synth_init"] = c.synth_init == synthesizer_init::identity ? "identity" : "xavier";
  j["synth_residual"] = c.synth_residual, j["pseudo_grad"] = c.pseudo_grad;
  j["syn_loss"] = c.syn_loss == syn_loss_kind::bce ? "bce" : "ce";
  j["lr"] = c.lr, j["min_lr"] = c.min_lr, j["weight_decay"] = c.weight_decay, j["warmup"] = c.warmup, j["clip"] = c.clip;
  j["batch"] = c.batch, j["steps"] = c.steps, j["flip"] = c.flip, j["seed"] = c.seed, j["threads"] = c.threads;
  j["embed_dim"] = c.encoder.embed_dim, j["widths"] = c.encoder.widths;
  j["train_images"] = wp.train_images, j["test_images"] = wp.test_images;
  j["dense_noise"] = wp.teacher.dense_noise, j["gap"] = wp.teacher.gap, j["global_bias"] = wp.teacher.global_bias;
  j["cls_noise"] = wp.teacher.cls_noise, j["calibration"] = calibration;
  return j;
}

nlohmann::json metrics_json(const eval::segmentation_metrics& m) {
  nlohmann::json j;
  j["miou_seen"] = m.miou_seen, j["miou_unseen"] = m.miou_unseen, j["hiou"] = m.hiou, j["pixel_acc"] = m.pixel_acc;
  j["miou"] = m.miou;
  nlohmann::json pc = nlohmann::json::array();
  for (double v : m.per_class_iou) pc.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
  j["per_class_iou"] = pc;
  return j;
}

void write_json(const fs::path& file, const nlohmann::json& j) {
  write_file_atomically(file, [&](std::ostream& out) { out << j.dump(2) << '\n'; });
}

/// One-line progress: `\r` updates on a TTY, a plain line every ~10 % otherwise.
struct progress {
  bool tty = ::isatty(STDERR_FILENO) != 0;
  bool quiet = false;
  std::string label;
  std::uint64_t total = 1, last_line = 0;
  clock_type::time_point start = clock_type::now();
  std::uint64_t first = 0;
  void update(std::uint64_t step, const train::step_losses& l, index_t batch) {
    if (quiet) return;
    const double sec = std::chrono::duration<double>(clock_type::now() - start).count();
    const double done = double(step - first);
    const double ips = sec > 0 ? done * double(batch) / sec : 0.0;
    const double eta = done > 0 ? sec / done * double(total - step) : 0.0;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s step %5llu/%llu  loss %.3f (ce %.3f nel %.3f glm %.3f syn %.3f)  %6.0f img/s  ETA %3.0fs",
                  label.c_str(), (unsigned long long)step, (unsigned long long)total, l.total, l.ce, l.nel, l.glm, l.syn,
                  ips, eta);
    if (tty) {
      std::fprintf(stderr, "\r%s\033[K", buf);
      if (step == total) std::fputc('\n', stderr);
    } else if (step == total || step - last_line >= std::max<std::uint64_t>(1, total / 10)) {
      std::fprintf(stderr, "%s\n", buf);
      last_line = step;
    }
    std::fflush(stderr);
  }
};

struct options {
  train::trainer_config cfg;
  toy::world_params world;
  double calibration = 0;
  std::string out;
  bool resume = false, ablation = false, quick = false, baseline = true, quiet = false;
  index_t seeds = 3, panels = 6;
  std::uint64_t checkpoint_every = 0;
  double require_gain = -1;
};

/// Trains one arm and evaluates it on the test scenes.
run_result train_and_evaluate(const train::trainer_config& cfg, const toy::world<T>& w, const train::toy_classes<T>& cls,
                              const std::vector<train::image_targets<T>>& targets, const options& o, const std::string& label,
                              const fs::path* ckpt_dir, bool resume, bool keep_predictions) {
  const auto t0 = clock_type::now();
  train::trainer<T> tr(cfg, cls.seen_text);
  if (resume) {
    const auto s = tr.load(*ckpt_dir);
    std::fprintf(stderr, "resumed from %s at step %llu\n", ckpt_dir->c_str(), (unsigned long long)s);
  }
  progress prog;
  prog.quiet = o.quiet;
  prog.label = label;
  prog.total = cfg.steps;
  prog.first = tr.steps_done();
  const index_t n = w.train.size(), B = std::min<index_t>(cfg.batch, n);
  // Batches: a fresh permutation per epoch from rng(seed, epoch): a resumed run sees the same batches.
  std::vector<index_t> perm(n);
  std::uint64_t epoch = ~std::uint64_t(0);
  for (std::uint64_t s = tr.steps_done(); s < cfg.steps; ++s) {
    const std::uint64_t first = s * B, e = first / n;
    if (e != epoch) {
      epoch = e;
      std::iota(perm.begin(), perm.end(), index_t(0));
      rng g(cfg.seed ^ 0xda7a5eedull, e);
      for (index_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[g.below(i + 1)]);
    }
    std::vector<index_t> idx(B);
    for (index_t i = 0; i < B; ++i) idx[i] = perm[(first + i) % n];
    rng fg(cfg.seed ^ 0xf11bull, s);
    const auto batch = train::toy_batch<T>(w, targets, std::span<const index_t>(idx), cfg.flip, fg);
    const auto l = tr.step(batch);
    prog.update(s + 1, l, B);
    if (ckpt_dir && o.checkpoint_every > 0 && (s + 1) % o.checkpoint_every == 0 && s + 1 < cfg.steps) tr.save(*ckpt_dir);
  }
  if (ckpt_dir) tr.save(*ckpt_dir);
  run_result r;
  train::inference_params ip;
  ip.calibration = o.calibration;
  ip.threads = cfg.threads;
  r.metrics = train::evaluate_student(w, cls, tr.student(), ip, 32, keep_predictions ? &r.predictions : nullptr);
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return r;
}

/// Panel: image | ground truth | pseudo labels | prediction, 3× upscaled; unseen classes hatched white.
void write_panel(const fs::path& file, const toy::scene& s, const tensor<std::int32_t, 2>& pseudo_teacher,
                 index_t th, index_t tw, const tensor<std::int32_t, 2>& pred, const train::toy_classes<T>& cls) {
  const index_t H = s.labels.shape()[0], W = s.labels.shape()[1], z = 3, gap = 4, n = 4;
  tensor<std::uint8_t, 3> img = tensor<std::uint8_t, 3>::from_shape({H * z, n * W * z + (n - 1) * gap, 3});
  img.fill(255);
  const index_t Ks = cls.seen_ids.size();
  auto put = [&](index_t panel, index_t y, index_t x, rgb c) {
    for (index_t dy = 0; dy < z; ++dy)
      for (index_t dx = 0; dx < z; ++dx)
        for (index_t ch = 0; ch < 3; ++ch) img(y * z + dy, panel * (W * z + gap) + x * z + dx, ch) = c[ch];
  };
  auto label_px = [&](std::int32_t id, index_t y, index_t x) {
    rgb c = label_colour(id);
    if (id > 0 && !cls.seen_flag[index_t(id)] && (y + x) % 4 == 0) c = {255, 255, 255};  // unseen: hatched
    return c;
  };
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) {
      rgb c;
      for (index_t ch = 0; ch < 3; ++ch) c[ch] = std::uint8_t(std::lround(255.0f * s.image(y, x, ch)));
      put(0, y, x, c);
      put(1, y, x, label_px(s.labels(y, x), y, x));
      // Pseudo labels: seen → the class's colour, pseudo m → a colour beyond the 21 classes, ignored black.
      const auto q = pseudo_teacher(y * th / H, x * tw / W);
      rgb pc = q < 0 ? rgb{0, 0, 0} : index_t(q) < Ks ? label_colour(cls.seen_ids[index_t(q)]) : label_colour(40 + (q - std::int32_t(Ks)) * 7);
      put(2, y, x, pc);
      put(3, y, x, label_px(pred(y, x), y, x));
    }
  write_png(file, img);
}

void print_table(const std::vector<std::pair<std::string, eval::segmentation_metrics>>& rows) {
  std::printf("\n| %-28s | %8s | %8s | %8s | %9s |\n", "", "mIoU(S)", "mIoU(U)", "hIoU", "pixel acc");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(), std::string(11, '-').c_str());
  for (const auto& [name, m] : rows)
    std::printf("| %-28s | %8.1f | %8.1f | %8.1f | %9.1f |\n", name.c_str(), 100 * m.miou_seen, 100 * m.miou_unseen,
                100 * m.hiou, 100 * m.pixel_acc);
  std::fflush(stdout);
}

int run(const options& o) {
  const auto t_start = clock_type::now();
  std::optional<fs::path> out_dir;
  if (!o.out.empty()) {
    out_dir = fs::path(o.out);
    std::error_code ec;
    fs::create_directories(*out_dir, ec);
    if (ec || !fs::is_directory(*out_dir))
      throw std::runtime_error("cannot create the output directory '" + o.out + "'" + (ec ? ": " + ec.message() : ""));
    // Fail now rather than after training when the directory is not writable.
    write_file_atomically(*out_dir / ".write-test", [](std::ostream& s) { s << "ok\n"; });
    fs::remove(*out_dir / ".write-test", ec);
  }
  if (o.resume && !out_dir) throw std::invalid_argument("--resume needs --out DIR (the checkpoint lives in DIR/checkpoint)");

  auto wp = o.world;
  wp.seed = o.cfg.seed;
  std::fprintf(stderr, "toy world: %zu train / %zu test images, seed %llu ...\n", wp.train_images, wp.test_images,
               (unsigned long long)wp.seed);
  const auto world = toy::make_world<T>(wp, o.cfg.threads);
  const train::toy_classes<T> cls(world);
  auto cfg = o.cfg;
  cfg.encoder.embed_dim = world.text.shape()[1];
  cfg.validate();

  const auto t_targets = clock_type::now();
  const auto targets = train::make_toy_targets<T>(world, cls, cfg, true, cfg.threads);
  index_t pseudo = 0;
  for (const auto& t : targets) pseudo += t.pseudo_count;
  std::fprintf(stderr, "PLM pseudo labels: %zu pseudo classes over %zu images (%.2f s)\n", pseudo, targets.size(),
               std::chrono::duration<double>(clock_type::now() - t_targets).count());
  const auto teacher = train::evaluate_teacher(world, cls);

  if (o.ablation) {
    const std::vector<std::pair<bool, bool>> arms = {{false, false}, {true, false}, {false, true}, {true, true}};
    nlohmann::json aj;
    aj["seeds"] = nlohmann::json::array();
    std::vector<std::vector<eval::segmentation_metrics>> res(arms.size());
    for (index_t s = 0; s < o.seeds; ++s) aj["seeds"].push_back(o.cfg.seed + s);
    for (index_t s = 0; s < o.seeds; ++s) {
      auto wps = wp;
      wps.seed = o.cfg.seed + s;
      const auto ws = s == 0 ? toy::world<T>() : toy::make_world<T>(wps, o.cfg.threads);
      const auto& wref = s == 0 ? world : ws;
      const train::toy_classes<T> cs(wref);
      auto cs_cfg = cfg;
      cs_cfg.seed = o.cfg.seed + s;
      const auto tg = s == 0 ? std::vector<train::image_targets<T>>() : train::make_toy_targets<T>(wref, cs, cs_cfg, true, cfg.threads);
      const auto& tref = s == 0 ? targets : tg;
      for (index_t a = 0; a < arms.size(); ++a) {
        auto c = cs_cfg;
        c.modules.glm = arms[a].first;
        c.modules.plm = arms[a].second;
        const auto r = train_and_evaluate(c, wref, cs, tref, o, arm_name(c.modules) + " seed " + std::to_string(c.seed),
                                          nullptr, false, false);
        res[a].push_back(r.metrics);
        std::fprintf(stderr, "  %s seed %llu: mIoU(S) %.1f  mIoU(U) %.1f  hIoU %.1f  (%.0f s)\n", arm_name(c.modules).c_str(),
                     (unsigned long long)c.seed, 100 * r.metrics.miou_seen, 100 * r.metrics.miou_unseen,
                     100 * r.metrics.hiou, r.seconds);
      }
    }
    auto stat = [](const std::vector<double>& v) {
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
      double var = 0;
      for (double x : v) var += (x - mean) * (x - mean);
      return std::pair<double, double>{mean, v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0};
    };
    std::printf("\n| modules | mIoU(S) | mIoU(U) | hIoU |\n|---|---|---|---|\n");
    aj["arms"] = nlohmann::json::array();
    for (index_t a = 0; a < arms.size(); ++a) {
      train::module_config m;
      m.glm = arms[a].first, m.plm = arms[a].second;
      std::vector<double> S, U, Hh;
      nlohmann::json runs = nlohmann::json::array();
      for (const auto& r : res[a]) S.push_back(100 * r.miou_seen), U.push_back(100 * r.miou_unseen), Hh.push_back(100 * r.hiou),
          runs.push_back(metrics_json(r));
      const auto [sm, ss] = stat(S);
      const auto [um, us] = stat(U);
      const auto [hm, hs] = stat(Hh);
      std::printf("| %s | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f |\n", arm_name(m).c_str(), sm, ss, um, us, hm, hs);
      aj["arms"].push_back({{"name", arm_name(m)}, {"glm", m.glm}, {"plm", m.plm}, {"miou_seen_mean", sm}, {"miou_seen_std", ss},
                            {"miou_unseen_mean", um}, {"miou_unseen_std", us}, {"hiou_mean", hm}, {"hiou_std", hs}, {"runs", runs}});
    }
    std::printf("| teacher zero-shot (seed %llu) | %.1f | %.1f | %.1f |\n", (unsigned long long)o.cfg.seed,
                100 * teacher.miou_seen, 100 * teacher.miou_unseen, 100 * teacher.hiou);
    aj["teacher"] = metrics_json(teacher);
    aj["config"] = config_json(cfg, wp, o.calibration);
    aj["seconds"] = std::chrono::duration<double>(clock_type::now() - t_start).count();
    const fs::path file = out_dir ? *out_dir / "ablation.json" : fs::path("ablation.json");
    write_json(file, aj);
    std::printf("\nwrote %s (%.0f s)\n", file.c_str(), aj["seconds"].get<double>());
    return 0;
  }

  std::optional<fs::path> ckpt;
  if (out_dir) {
    ckpt = *out_dir / "checkpoint";
    fs::create_directories(*ckpt);
  }
  const auto main_run = train_and_evaluate(cfg, world, cls, targets, o, arm_name(cfg.modules), ckpt ? &*ckpt : nullptr,
                                           o.resume, out_dir.has_value());
  std::vector<std::pair<std::string, eval::segmentation_metrics>> rows = {{"this run: " + arm_name(cfg.modules), main_run.metrics}};
  std::optional<eval::segmentation_metrics> base;
  const bool is_baseline = !cfg.modules.glm && !cfg.modules.plm;
  if (is_baseline) {
    base = main_run.metrics;
  } else if (o.baseline) {
    auto bc = cfg;
    bc.modules.glm = false, bc.modules.plm = false;
    base = train_and_evaluate(bc, world, cls, targets, o, "baseline", nullptr, false, false).metrics;
    rows.push_back({"seen-only baseline", *base});
  }
  rows.push_back({"teacher zero-shot (tokens)", teacher});
  print_table(rows);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();
  std::printf("\n%.1f s in total (this run %.1f s)\n", seconds, main_run.seconds);

  if (out_dir) {
    auto j = metrics_json(main_run.metrics);
    j["config"] = config_json(cfg, wp, o.calibration);
    j["seconds"] = seconds;
    if (base) j["baseline"] = metrics_json(*base);
    j["teacher"] = metrics_json(teacher);
    j["class_names"] = nlohmann::json::array();
    for (index_t k = 0; k < toy::class_count; ++k) j["class_names"].push_back(toy::class_name(std::int32_t(k)));
    write_json(*out_dir / "metrics.json", j);
    for (index_t i = 0; i < std::min<index_t>(o.panels, world.test.size()); ++i) {
      const auto& s = world.test[i];
      const auto& t = world.test_teacher[i];
      const auto fused = train::toy_fused_labels(s, t, cls, cfg.pseudo, toy::test_index_base + i);
      tensor<std::int32_t, 2> fm = tensor<std::int32_t, 2>::from_shape({t.grid_h, t.grid_w});
      std::copy(fused.begin(), fused.end(), fm.begin());
      write_panel(*out_dir / ("panel_" + std::to_string(i) + ".png"), s, fm, t.grid_h, t.grid_w, main_run.predictions[i], cls);
    }
    std::printf("wrote %s/metrics.json, %zu panels, checkpoint/\n", out_dir->c_str(), std::min<index_t>(o.panels, world.test.size()));
  }
  if (o.require_gain >= 0) {
    if (!base) throw std::invalid_argument("--require-unseen-gain needs the baseline (drop --no-baseline)");
    const double gain = main_run.metrics.miou_unseen - base->miou_unseen;
    std::printf("mIoU(U) gain over the baseline: %+.1f points (required %+.1f)\n", 100 * gain, 100 * o.require_gain);
    if (gain < o.require_gain) return 3;
  }
  return 0;
}

}  // namespace

/// "--x: must be > 0, got 0" instead of CLI11's range text.
CLI::Validator number_check(bool strictly_positive) {
  return CLI::Validator(
      [strictly_positive](std::string& s) -> std::string {
        double v = 0;
        std::size_t used = 0;
        try {
          v = std::stod(s, &used);
        } catch (...) {
          return "'" + s + "' is not a number";
        }
        if (used != s.size() || !std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (strictly_positive ? !(v > 0) : !(v >= 0)) return std::string("must be ") + (strictly_positive ? "> 0" : ">= 0") + ", got " + s;
        return {};
      },
      strictly_positive ? "> 0" : ">= 0");
}

int main(int argc, char** argv) {
  const auto positive = number_check(true), non_negative = number_check(false);
  CLI::App app{"zss-train-toy: CLIP-ZSS (GLM + PLM) on the toy world; prints mIoU(S), mIoU(U), hIoU next to the "
               "seen-only baseline and the teacher's own zero-shot segmentation."};
  options o;
  auto& c = o.cfg;
  std::string pool = "attention";
  bool no_glm = false, no_plm = false, no_nel = false, no_flip = false, no_baseline = false;
  bool no_region_tokens = false, recipe = false;
  std::string syn_loss = "bce", prototypes = "synthesizer", synth_init = "xavier";
  app.add_option("--steps", c.steps, "optimiser steps")->capture_default_str()->check(positive);
  app.add_option("--batch", c.batch, "images per step")->capture_default_str()->check(positive);
  app.add_option("--lr", c.lr, "peak learning rate (AdamW, cosine schedule)")->capture_default_str()->check(positive);
  app.add_option("--warmup", c.warmup, "linear warm-up steps")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay")->capture_default_str()->check(non_negative);
  app.add_option("--clip", c.clip, "max global gradient norm (0 = off)")->capture_default_str()->check(non_negative);
  app.add_option("--seed", c.seed, "seeds everything: data, teacher, initialisation, batches")->capture_default_str();
  app.add_option("--threads", c.threads, "threads (0 = OpenMP default)")->capture_default_str()->check(non_negative);
  app.add_flag("--no-glm", no_glm, "switch the Global Learning Module off");
  app.add_flag("--no-plm", no_plm, "switch the Pixel Learning Module off (no pseudo labels, no synthesizer)");
  app.add_flag("--no-nel", no_nel, "switch the focal + dice loss off");
  app.add_flag("--no-flip", no_flip, "no random horizontal flips");
  app.add_option("--lambda-ce", c.modules.lambda_ce, "weight of L_ce")->capture_default_str()->check(non_negative);
  app.add_option("--lambda-nel", c.modules.lambda_nel, "weight of L_nel")->capture_default_str()->check(non_negative);
  app.add_option("--lambda-glm", c.modules.lambda_glm, "weight of L_glm")->capture_default_str()->check(non_negative);
  app.add_option("--lambda-syn", c.modules.lambda_syn, "weight of L_syn")->capture_default_str()->check(non_negative);
  app.add_option("--pool", pool, "GLM pooling")->capture_default_str()->check(CLI::IsMember({"attention", "mean", "dense", "selective"}));
  app.add_flag("--synth-recipe", recipe,
               "the synthesizer recipe: no query shortcut, identity init, delta 10, no L_ce gradient into the pseudo "
               "prototypes (makes PLM alone work on the toy world; see include/zss/train/config.hpp)");
  app.add_flag("--synth-residual,!--no-synth-residual", c.synth_residual,
               "synthesizer query shortcut h = p + CrossAttn(LN(p), memory) (DESIGN; else h = CrossAttn)");
  app.add_option("--prototypes", prototypes,
                 "pseudo classes' weights: the synthesizer's prototypes, or the teacher's region tokens (ablation)")
      ->capture_default_str()->check(CLI::IsMember({"synthesizer", "teacher-tokens"}));
  app.add_option("--synth-init", synth_init, "synthesizer init: xavier, or identity attention projections and fc2 = 0")
      ->capture_default_str()->check(CLI::IsMember({"xavier", "identity"}));
  app.add_flag("--no-region-tokens", no_region_tokens, "synthesizer memory = the teacher CLS only");
  app.add_flag("--pseudo-grad,!--no-pseudo-grad", c.pseudo_grad,
               "L_ce/L_nel also train the pseudo prototypes (DESIGN; else stop-gradient)");
  app.add_option("--syn-loss", syn_loss, "L_syn: BCE over seen classes or softmax CE")->capture_default_str()->check(CLI::IsMember({"bce", "ce"}));
  app.add_option("--syn-tau", c.syn_tau, "L_syn temperature τ_s")->capture_default_str()->check(positive);
  app.add_option("--syn-delta", c.syn_delta, "L_syn logit offset δ")->capture_default_str();
  app.add_option("--glm-tau", c.glm_tau, "GLM temperature")->capture_default_str()->check(positive);
  app.add_option("--bank", c.bank_size, "CLS bank size M")->capture_default_str();
  app.add_option("--fusion-lambda", c.pseudo.lambda, "mask-fusion threshold λ")->capture_default_str()->check(CLI::Range(-1.0, 1.0));
  app.add_option("--windows", c.pseudo.windows, "K-Means window sizes on the teacher grid")->capture_default_str();
  app.add_option("--min-tokens", c.pseudo.min_tokens, "min ignored tokens of a pseudo class")->capture_default_str();
  app.add_option("--calibration", o.calibration, "γ subtracted from seen classes' scores at inference")->capture_default_str();
  app.add_option("--train-images", o.world.train_images, "training scenes")->capture_default_str()->check(positive);
  app.add_option("--test-images", o.world.test_images, "test scenes")->capture_default_str()->check(positive);
  app.add_option("--dense-noise", o.world.teacher.dense_noise, "teacher's dense-token noise σ_d")->capture_default_str()->check(non_negative);
  app.add_option("--gap", o.world.teacher.gap, "teacher's modality gap (rotation strength; 0 = none)")->capture_default_str()->check(non_negative);
  app.add_option("--global-bias", o.world.teacher.global_bias, "teacher's global bias γ in dense tokens")->capture_default_str()->check(non_negative);
  app.add_option("--cls-noise", o.world.teacher.cls_noise, "teacher's CLS noise σ_c")->capture_default_str()->check(non_negative);
  app.add_option("--out", o.out, "write metrics.json, panel PNGs and checkpoint/ into this directory");
  app.add_flag("--resume", o.resume, "continue from DIR/checkpoint (needs --out DIR)");
  app.add_option("--checkpoint-every", o.checkpoint_every, "also save the checkpoint every N steps (0 = only at the end)")->capture_default_str();
  app.add_option("--panels", o.panels, "test images drawn as panels with --out")->capture_default_str();
  app.add_flag("--ablation", o.ablation, "train baseline, +GLM, +PLM, +GLM+PLM for each seed; Markdown table + ablation.json");
  app.add_option("--seeds", o.seeds, "seeds of --ablation (S, S+1, ...)")->capture_default_str()->check(positive);
  app.add_flag("--quick", o.quick, "tiny configuration for tests (few images and steps)");
  app.add_flag("--no-baseline", no_baseline, "do not train the seen-only baseline reference");
  app.add_flag("--quiet", o.quiet, "no progress display");
  app.add_option("--require-unseen-gain", o.require_gain, "exit 3 unless mIoU(U) beats the baseline's by this much (0..1; tests)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (o.quick) {
      // Tiny, but big enough that the modules' effect on unseen classes is measurable.
      if (app.count("--steps") == 0) c.steps = 150;
      if (app.count("--train-images") == 0) o.world.train_images = 192;
      if (app.count("--test-images") == 0) o.world.test_images = 48;
      if (app.count("--warmup") == 0) c.warmup = 15;
      if (app.count("--panels") == 0) o.panels = 2;
    }
    c.modules.glm = !no_glm;
    c.modules.plm = !no_plm;
    c.modules.nel = !no_nel;
    c.flip = !no_flip;
    c.synth_init = synth_init == "identity" ? synthesizer_init::identity : synthesizer_init::xavier;
    if (recipe) {  // the preset first; options given explicitly still win
      const auto explicit_cfg = c;
      c.use_synthesizer_recipe();
      if (app.count("--synth-residual") + app.count("--no-synth-residual")) c.synth_residual = explicit_cfg.synth_residual;
      if (app.count("--pseudo-grad") + app.count("--no-pseudo-grad")) c.pseudo_grad = explicit_cfg.pseudo_grad;
      if (app.count("--syn-delta")) c.syn_delta = explicit_cfg.syn_delta;
      if (app.count("--synth-init")) c.synth_init = explicit_cfg.synth_init;
    }
    c.prototypes = prototypes == "teacher-tokens" ? train::prototype_source::teacher_tokens : train::prototype_source::synthesizer;
    c.region_tokens = !no_region_tokens;
    c.syn_loss = syn_loss == "ce" ? syn_loss_kind::ce : syn_loss_kind::bce;
    o.baseline = !no_baseline;
    c.pool = pool == "mean" ? glm_pool::mean : pool == "dense" ? glm_pool::dense : pool == "selective" ? glm_pool::selective : glm_pool::attention;
    c.warmup = std::min(c.warmup, c.steps);
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nzss-train-toy: error: %s\n", e.what());
    return 1;
  }
}
