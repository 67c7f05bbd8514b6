// SPDX-License-Identifier: Apache-2.0
// zss-train-toy: CLIP-ZSS end to end on the toy world (DESIGN.md §1, §2, §4). A compact student
// learns to segment classes it never saw labelled, taught by a simulated CLIP teacher through
// GLM (global, CLS attention + InfoNCE) and PLM (pseudo labels from multi-scale K-Means + mask
// fusion, prototypes from the synthesizer). At the end: mIoU(S), mIoU(U), hIoU next to the
// seen-only baseline and the teacher's own zero-shot segmentation.
//
// Every option that changes the result is a described field (train/config.hpp, toy/dataset.hpp
// and `describe(run_options)` below): the command line, metrics.json's "config" and the
// checkpoint's configuration all come from those descriptions.
//
// Outputs (README "Training outputs"): with --out DIR every output is checked before any work;
// DIR/checkpoint.zss is saved atomically every --checkpoint-every steps (default 50); at the end
// metrics.json, timings.json, the panels and the final checkpoint are written to temporaries and
// renamed together (the checkpoint last). metrics.json holds no wall-clock time (timings.json
// does), so a run resumed with --resume ends with the same metrics.json, panels and checkpoint,
// byte for byte, as the uninterrupted run (tests/train_toy/kill_resume.cmake).
#include <unistd.h>

#include <csignal>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "common/option_binding.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/io/image_io.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace fs = std::filesystem;
using namespace zss;
using T = float;
using clock_type = std::chrono::steady_clock;

namespace {

/// What a run's result depends on: the trainer, the toy world, the inference calibration.
struct run_options {
  train::trainer_options train;
  toy::world_options world;
  double calibration = 0;  ///< γ subtracted from the seen classes' scores at inference
};

template <class V>
void describe(V& v, run_options& o) {
  describe(v, o.train);
  v.nested("world.", o.world);
  v.field("calibration", o.calibration, "gamma subtracted from seen classes' scores at inference",
          checks::finite(), "calibration");
}

/// How the program runs (not part of the result).
struct control_options {
  std::string out;
  bool resume = false, ablation = false, quick = false, baseline = true, quiet = false,
       recipe = false;
  index_t seeds = 3, panels = 6;
  std::uint64_t checkpoint_every = 50;
  double require_gain = -1;
};

struct run_result {
  eval::segmentation_metrics metrics;
  double seconds = 0;
  std::uint64_t resumed_at = 0;  ///< the step a --resume continued from (0: from scratch)
  std::vector<tensor<std::int32_t, 2>> predictions;
  std::vector<unsigned char> checkpoint;  ///< the final checkpoint's bytes (with a checkpoint)
};

std::string arm_name(const train::module_options& m) {
  if (m.glm && m.plm) return "GLM+PLM";
  if (m.glm) return "+GLM";
  if (m.plm) return "+PLM";
  return "baseline (seen only)";
}

nlohmann::json metrics_json(const eval::segmentation_metrics& m) {
  nlohmann::json j;
  j["miou_seen"] = m.miou_seen, j["miou_unseen"] = m.miou_unseen, j["hiou"] = m.hiou,
  j["pixel_acc"] = m.pixel_acc;
  j["miou"] = m.miou;
  nlohmann::json pc = nlohmann::json::array();
  for (double v : m.per_class_iou)
    pc.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
  j["per_class_iou"] = pc;
  return j;
}

std::string json_text(const nlohmann::json& j) {
  return j.dump(2) + "\n";
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
    std::snprintf(buf, sizeof buf,
                  "%s step %5llu/%llu  loss %.3f (ce %.3f nel %.3f glm %.3f syn %.3f)  %6.0f img/s "
                  " ETA %3.0fs",
                  label.c_str(), (unsigned long long)step, (unsigned long long)total, l.total, l.ce,
                  l.nel, l.glm, l.syn, ips, eta);
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

/// Trains one arm and evaluates it on the test scenes.
run_result train_and_evaluate(const run_options& ro, const toy::world<T>& w,
                              const train::toy_classes<T>& cls,
                              const std::vector<image_targets<T>>& targets,
                              const control_options& o, const std::string& label,
                              const fs::path* ckpt, bool resume, bool keep_predictions) {
  // ckpt: saved atomically every o.checkpoint_every steps; the final checkpoint's bytes are
  // returned (the caller commits them with the other outputs).
  const auto& cfg = ro.train;
  const auto t0 = clock_type::now();
  train::trainer<T> tr(cfg, cls.seen_text);
  auto app_config = ro;
  const std::string app_text = option_fields(app_config).to_text();
  std::error_code ec;
  if (resume && !fs::exists(*ckpt, ec)) {
    std::fprintf(stderr, "--resume: no %s yet; starting at step 0\n", ckpt->c_str());
    resume = false;
  }
  if (resume) {
    const auto sections = tr.load(*ckpt);
    const checkpoint_section* mine = nullptr;
    for (const auto& sec : sections)
      if (sec.name == "zss-train-toy.config") mine = &sec;
    if (!mine)
      throw std::invalid_argument("--resume: " + ckpt->string() +
                                  " was not written by zss-train-toy");
    const auto diff = first_difference(std::string(mine->bytes.begin(), mine->bytes.end()),
                                       option_fields(app_config));
    if (!diff.empty())
      throw std::invalid_argument("--resume: " + ckpt->string() + " holds another run: " + diff);
    std::fprintf(stderr, "resumed from %s at step %llu\n", ckpt->c_str(),
                 (unsigned long long)tr.steps_done());
  }
  const std::uint64_t resumed_at = tr.steps_done();
  auto sections = [&] {
    return std::vector<checkpoint_section>{
        checkpoint_section{"zss-train-toy.config", {app_text.begin(), app_text.end()}}};
  };
  progress prog;
  prog.quiet = o.quiet;
  prog.label = label;
  prog.total = cfg.steps();
  prog.first = tr.steps_done();
  const index_t B = std::min<index_t>(cfg.batch, w.train.size());
  train::batch_sampler sampler(w.train.size(), B, cfg.seed);
  for (std::uint64_t s = tr.steps_done(); s < cfg.steps(); ++s) {
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, cfg.flip);
    const auto batch = train::toy_batch<T>(w, targets, std::span<const index_t>(idx),
                                           std::span<const char>(flips));
    const auto l = tr.step(batch);
    prog.update(s + 1, l, B);
    if (ckpt && o.checkpoint_every > 0 && (s + 1) % o.checkpoint_every == 0 && s + 1 < cfg.steps())
      tr.save(*ckpt, sections());
  }
  run_result r;
  r.resumed_at = resumed_at;
  if (ckpt) r.checkpoint = tr.checkpoint(sections());
  eval::predict_options ip;
  ip.calibration = ro.calibration;
  ip.threads = cfg.threads;
  r.metrics = train::evaluate_student(w, cls, tr.student(), ip, 32,
                                      keep_predictions ? &r.predictions : nullptr);
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return r;
}

/// Panel: image | ground truth | pseudo labels | prediction, 3× upscaled; unseen classes hatched
/// white. Returns the PNG's bytes.
std::vector<unsigned char> panel_png(const toy::scene& s,
                                     const tensor<std::int32_t, 2>& pseudo_teacher, index_t th,
                                     index_t tw, const tensor<std::int32_t, 2>& pred,
                                     const train::toy_classes<T>& cls) {
  const index_t H = s.labels.shape()[0], W = s.labels.shape()[1], z = 3, gap = 4, n = 4;
  tensor<std::uint8_t, 3> img =
      tensor<std::uint8_t, 3>::from_shape({H * z, n * W * z + (n - 1) * gap, 3});
  img.fill(255);
  const index_t Ks = cls.seen_ids.size();
  auto put = [&](index_t panel, index_t y, index_t x, rgb c) {
    for (index_t dy = 0; dy < z; ++dy)
      for (index_t dx = 0; dx < z; ++dx)
        for (index_t ch = 0; ch < 3; ++ch)
          img(y * z + dy, panel * (W * z + gap) + x * z + dx, ch) = c[ch];
  };
  auto label_px = [&](std::int32_t id, index_t y, index_t x) {
    rgb c = label_colour(id);
    if (id > 0 && !cls.seen_flag[index_t(id)] && (y + x) % 4 == 0)
      c = {255, 255, 255};  // unseen: hatched
    return c;
  };
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) {
      rgb c;
      for (index_t ch = 0; ch < 3; ++ch)
        c[ch] = std::uint8_t(std::lround(255.0f * s.image(y, x, ch)));
      put(0, y, x, c);
      put(1, y, x, label_px(s.labels(y, x), y, x));
      // Pseudo labels: seen → the class's colour, pseudo m → a colour beyond the 21 classes,
      // ignored black.
      const auto q = pseudo_teacher(y * th / H, x * tw / W);
      rgb pc = q < 0             ? rgb{0, 0, 0}
               : index_t(q) < Ks ? label_colour(cls.seen_ids[index_t(q)])
                                 : label_colour(40 + (q - std::int32_t(Ks)) * 7);
      put(2, y, x, pc);
      put(3, y, x, label_px(pred(y, x), y, x));
    }
  return encode_png(img.data(), img.shape()[0], img.shape()[1], img.shape()[2]);
}

void print_table(const std::vector<std::pair<std::string, eval::segmentation_metrics>>& rows) {
  std::printf("\n| %-28s | %8s | %8s | %8s | %9s |\n", "", "mIoU(S)", "mIoU(U)", "hIoU",
              "pixel acc");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(11, '-').c_str());
  for (const auto& [name, m] : rows)
    std::printf("| %-28s | %8.1f | %8.1f | %8.1f | %9.1f |\n", name.c_str(), 100 * m.miou_seen,
                100 * m.miou_unseen, 100 * m.hiou, 100 * m.pixel_acc);
  std::fflush(stdout);
}

/// The run's outputs, checked before any work and committed together at the end.
struct run_outputs {
  output_set set;
  std::optional<std::size_t> metrics, timings, ablation, checkpoint;
  std::vector<std::size_t> panels;
};

int run(run_options ro, const control_options& o) {
  const auto t_start = clock_type::now();
  if (o.resume && o.out.empty())
    throw std::invalid_argument("--resume needs --out DIR (the checkpoint is DIR/checkpoint.zss)");
  if (o.resume && o.ablation)
    throw std::invalid_argument("--resume does not apply to --ablation (it keeps no checkpoints)");
  std::optional<fs::path> out_dir;
  run_outputs outs;
  if (!o.out.empty()) {
    out_dir = fs::path(o.out);
    std::error_code ec;
    fs::create_directories(*out_dir, ec);
    if (ec || !fs::is_directory(*out_dir))
      throw std::runtime_error("cannot create the output directory '" + o.out + "'" +
                               (ec ? ": " + ec.message() : ""));
  }
  // Every output is checked now, before the world is generated (io/atomic_file.hpp); this
  // program owns DIR, so temporaries a killed run left there are removed.
  auto add = [&](const fs::path& file) {
    if (out_dir) remove_stale_temporaries(file);
    return outs.set.add(file, "--out");
  };
  if (o.ablation) {
    outs.ablation = add(out_dir ? *out_dir / "ablation.json" : fs::path("ablation.json"));
    if (out_dir) outs.timings = add(*out_dir / "timings.json");
  } else if (out_dir) {
    outs.metrics = add(*out_dir / "metrics.json");
    outs.timings = add(*out_dir / "timings.json");
    for (index_t i = 0; i < std::min<index_t>(o.panels, ro.world.test_images); ++i)
      outs.panels.push_back(add(*out_dir / ("panel_" + std::to_string(i) + ".png")));
    outs.checkpoint = add(*out_dir / "checkpoint.zss");  // renamed last
  }

  auto& cfg = ro.train;
  auto wp = ro.world;
  wp.seed = cfg.seed;
  std::fprintf(stderr, "toy world: %zu train / %zu test images, seed %llu ...\n", wp.train_images,
               wp.test_images, (unsigned long long)wp.seed);
  const auto world = toy::make_world<T>(wp, cfg.threads);
  const train::toy_classes<T> cls(world);

  const auto t_targets = clock_type::now();
  const auto targets = train::make_toy_targets<T>(world, cls, cfg, true, cfg.threads);
  index_t pseudo = 0;
  for (const auto& t : targets) pseudo += t.pseudo_count;
  std::fprintf(stderr, "PLM pseudo labels: %zu pseudo classes over %zu images (%.2f s)\n", pseudo,
               targets.size(),
               std::chrono::duration<double>(clock_type::now() - t_targets).count());
  const auto teacher = train::evaluate_teacher(world, cls);
  const auto config_json = examples::to_json(option_fields(ro));

  if (o.ablation) {
    const std::vector<std::pair<bool, bool>> arms = {
        {false, false}, {true, false}, {false, true}, {true, true}};
    nlohmann::json aj;
    aj["seeds"] = nlohmann::json::array();
    std::vector<std::vector<eval::segmentation_metrics>> res(arms.size());
    for (index_t s = 0; s < o.seeds; ++s) aj["seeds"].push_back(cfg.seed + s);
    for (index_t s = 0; s < o.seeds; ++s) {
      auto rs = ro;
      rs.train.seed = cfg.seed + s;
      auto wps = wp;
      wps.seed = rs.train.seed;
      const auto ws = s == 0 ? toy::world<T>() : toy::make_world<T>(wps, cfg.threads);
      const auto& wref = s == 0 ? world : ws;
      const train::toy_classes<T> cs(wref);
      const auto tg = s == 0 ? std::vector<image_targets<T>>()
                             : train::make_toy_targets<T>(wref, cs, rs.train, true, cfg.threads);
      const auto& tref = s == 0 ? targets : tg;
      for (index_t a = 0; a < arms.size(); ++a) {
        auto ra = rs;
        ra.train.modules.glm = arms[a].first;
        ra.train.modules.plm = arms[a].second;
        const auto r = train_and_evaluate(
            ra, wref, cs, tref, o,
            arm_name(ra.train.modules) + " seed " + std::to_string(ra.train.seed), nullptr, false,
            false);
        res[a].push_back(r.metrics);
        std::fprintf(stderr, "  %s seed %llu: mIoU(S) %.1f  mIoU(U) %.1f  hIoU %.1f  (%.0f s)\n",
                     arm_name(ra.train.modules).c_str(), (unsigned long long)ra.train.seed,
                     100 * r.metrics.miou_seen, 100 * r.metrics.miou_unseen, 100 * r.metrics.hiou,
                     r.seconds);
      }
    }
    auto stat = [](const std::vector<double>& v) {
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
      double var = 0;
      for (double x : v) var += (x - mean) * (x - mean);
      return std::pair<double, double>{mean,
                                       v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0};
    };
    std::printf("\n| modules | mIoU(S) | mIoU(U) | hIoU |\n|---|---|---|---|\n");
    aj["arms"] = nlohmann::json::array();
    for (index_t a = 0; a < arms.size(); ++a) {
      train::module_options m;
      m.glm = arms[a].first, m.plm = arms[a].second;
      std::vector<double> S, U, Hh;
      nlohmann::json runs = nlohmann::json::array();
      for (const auto& r : res[a])
        S.push_back(100 * r.miou_seen), U.push_back(100 * r.miou_unseen),
            Hh.push_back(100 * r.hiou), runs.push_back(metrics_json(r));
      const auto [sm, ss] = stat(S);
      const auto [um, us] = stat(U);
      const auto [hm, hs] = stat(Hh);
      std::printf("| %s | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f |\n", arm_name(m).c_str(), sm, ss,
                  um, us, hm, hs);
      aj["arms"].push_back({{"name", arm_name(m)},
                            {"glm", m.glm},
                            {"plm", m.plm},
                            {"miou_seen_mean", sm},
                            {"miou_seen_std", ss},
                            {"miou_unseen_mean", um},
                            {"miou_unseen_std", us},
                            {"hiou_mean", hm},
                            {"hiou_std", hs},
                            {"runs", runs}});
    }
    std::printf("| teacher zero-shot (seed %llu) | %.1f | %.1f | %.1f |\n",
                (unsigned long long)cfg.seed, 100 * teacher.miou_seen, 100 * teacher.miou_unseen,
                100 * teacher.hiou);
    aj["teacher"] = metrics_json(teacher);
    aj["config"] = config_json;
    const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();
    outs.set.write_bytes(*outs.ablation, json_text(aj));
    if (outs.timings) outs.set.write_bytes(*outs.timings, json_text({{"seconds_total", seconds}}));
    outs.set.commit();
    std::printf("\nwrote %s (%.0f s)\n", outs.set.path(*outs.ablation).c_str(), seconds);
    return 0;
  }

  std::optional<fs::path> ckpt;
  if (out_dir) ckpt = *out_dir / "checkpoint.zss";
  const auto main_run = train_and_evaluate(ro, world, cls, targets, o, arm_name(cfg.modules),
                                           ckpt ? &*ckpt : nullptr, o.resume, out_dir.has_value());
  std::vector<std::pair<std::string, eval::segmentation_metrics>> rows = {
      {"this run: " + arm_name(cfg.modules), main_run.metrics}};
  std::optional<eval::segmentation_metrics> base;
  const bool is_baseline = !cfg.modules.glm && !cfg.modules.plm;
  if (is_baseline) {
    base = main_run.metrics;
  } else if (o.baseline) {
    auto rb = ro;
    rb.train.modules.glm = false, rb.train.modules.plm = false;
    base =
        train_and_evaluate(rb, world, cls, targets, o, "baseline", nullptr, false, false).metrics;
    rows.push_back({"seen-only baseline", *base});
  }
  rows.push_back({"teacher zero-shot (tokens)", teacher});
  print_table(rows);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();
  std::printf("\n%.1f s in total (this run %.1f s)\n", seconds, main_run.seconds);

  if (out_dir) {
    // Everything in metrics.json is a function of the configuration (no wall-clock time), so a
    // resumed run writes the same bytes as an uninterrupted one; times go to timings.json.
    auto j = metrics_json(main_run.metrics);
    j["config"] = config_json;
    if (base) j["baseline"] = metrics_json(*base);
    j["teacher"] = metrics_json(teacher);
    j["class_names"] = nlohmann::json::array();
    for (index_t k = 0; k < toy::class_count; ++k)
      j["class_names"].push_back(toy::class_name(std::int32_t(k)));
    outs.set.write_bytes(*outs.metrics, json_text(j));
    outs.set.write_bytes(*outs.timings, json_text({{"seconds_total", seconds},
                                                   {"seconds_this_run", main_run.seconds},
                                                   {"resumed_at_step", main_run.resumed_at}}));
    for (index_t i = 0; i < outs.panels.size(); ++i) {
      const auto& s = world.test[i];
      const auto& t = world.test_teacher[i];
      const auto fused = train::toy_fused_labels(s, t, cls, cfg.pseudo, toy::test_index_base + i);
      tensor<std::int32_t, 2> fm = tensor<std::int32_t, 2>::from_shape({t.grid_h, t.grid_w});
      std::copy(fused.begin(), fused.end(), fm.begin());
      outs.set.write_bytes(outs.panels[i],
                           panel_png(s, fm, t.grid_h, t.grid_w, main_run.predictions[i], cls));
    }
    outs.set.write_bytes(*outs.checkpoint, main_run.checkpoint);
    outs.set.commit();
    std::printf("wrote %s/metrics.json, timings.json, %zu panels, checkpoint.zss\n",
                out_dir->c_str(), outs.panels.size());
  }
  if (o.require_gain >= 0) {
    if (!base)
      throw std::invalid_argument("--require-unseen-gain needs the baseline (drop --no-baseline)");
    const double gain = main_run.metrics.miou_unseen - base->miou_unseen;
    std::printf("mIoU(U) gain over the baseline: %+.1f points (required %+.1f)\n", 100 * gain,
                100 * o.require_gain);
    if (gain < o.require_gain) return 3;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "zss-train-toy: CLIP-ZSS (GLM + PLM) on the toy world; prints mIoU(S), mIoU(U), hIoU next to "
      "the "
      "seen-only baseline and the teacher's own zero-shot segmentation."};
  run_options ro;
  control_options o;
  option_fields fields(ro);
  examples::add_options(app, fields, "Configuration (stored in metrics.json and the checkpoint)");
  app.add_flag("--synth-recipe", o.recipe,
               "preset: the synthesizer recipe of docs/EXPERIMENTS.md (no query shortcut, identity "
               "init, delta 10, "
               "no L_ce gradient into the pseudo prototypes); options given explicitly win");
  app.add_flag("--quick", o.quick,
               "preset for tests: 192 / 48 scenes, 150 steps, warm-up 15, 2 panels; options given "
               "explicitly win");
  app.add_option("--out", o.out,
                 "write metrics.json, panel PNGs and checkpoint.zss into this directory");
  app.add_flag("--resume", o.resume,
               "continue from DIR/checkpoint.zss (needs --out DIR and the same configuration)");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "with --out, save DIR/checkpoint.zss every N steps (0 = only at the end)")
      ->capture_default_str();
  app.add_option("--panels", o.panels, "test images drawn as panels with --out")
      ->capture_default_str();
  app.add_flag(
      "--ablation", o.ablation,
      "train baseline, +GLM, +PLM, +GLM+PLM for each seed; Markdown table + ablation.json");
  app.add_option("--seeds", o.seeds, "seeds of --ablation (S, S+1, ...)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("!--no-baseline", o.baseline, "do not train the seen-only baseline reference");
  app.add_flag("--quiet", o.quiet, "no progress display");
  app.add_option("--require-unseen-gain", o.require_gain,
                 "exit 3 unless mIoU(U) beats the baseline's by this much (0..1; tests)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::signal(SIGXFSZ, SIG_IGN);  // a file-size limit fails the write (EFBIG), not the process
  try {
    // Presets change only what the command line did not set.
    std::vector<std::pair<option_field*, std::string>> explicit_values;
    for (auto& f : fields.all())
      if (examples::given(app, f)) explicit_values.push_back({&f, f.get()});
    if (o.quick) {
      ro.train.schedule.total_steps = 150;
      ro.train.schedule.warmup_steps = 15;
      ro.world.train_images = 192;
      ro.world.test_images = 48;
      if (app.count("--panels") == 0) o.panels = 2;
    }
    if (o.recipe) ro.train.use_synthesizer_recipe();
    for (auto& [f, text] : explicit_values) f->set(text);
    // The warm-up default never exceeds the run (an explicit --warmup above --steps is an error).
    const auto* warm = fields.find("schedule.warmup_steps");
    if (!examples::given(app, *warm))
      ro.train.schedule.warmup_steps =
          std::min(ro.train.schedule.warmup_steps, ro.train.schedule.total_steps);
    ro.train.encoder.embed_dim = ro.world.text.dim;  // the student's width is the text's
    ro.train.validate();
    return run(ro, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nzss-train-toy: error: %s\n", e.what());
    return 1;
  }
}
