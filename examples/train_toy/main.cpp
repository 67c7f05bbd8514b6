// SPDX-License-Identifier: Apache-2.0
// zss-train-toy: CLIP-ZSS end to end on the toy world (DESIGN.md §1, §2, §4). A compact student
// learns to segment classes it never saw labelled, taught by a simulated CLIP teacher through
// GLM (global, CLS attention + InfoNCE) and PLM (pseudo labels from multi-scale K-Means + mask
// fusion, prototypes from the synthesizer). At the end: mIoU(S), mIoU(U), hIoU next to the
// seen-only baseline and the teacher's own zero-shot segmentation.
//
// Every option that changes the result is a described field (train/config.hpp, toy/dataset.hpp,
// clip/config.hpp and `describe(run_options)` below): the command line, metrics.json's "config"
// and the checkpoint's configuration all come from those descriptions.
//
// `--teacher learned` replaces the simulated teacher by mini-CLIP (zss/clip/): trained here from
// captions of toy scenes (or loaded from the teacher cache, keyed by everything its weights
// depend on), its class prompts become the text embeddings and its CLS and MaskCLIP tokens the
// teacher's outputs.
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

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "common/option_binding.hpp"
#include "common/train_report.hpp"
#include "zss/clip/evaluate.hpp"
#include "zss/clip/teacher.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/io/image_io.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace fs = std::filesystem;
using namespace zss;
using T = float;
using examples::clock_type;
using examples::metrics_json;
using examples::print_gap_shift;
using examples::print_table;
using examples::progress;

namespace {

/// Which teacher the world uses.
enum class teacher_kind { simulated, learned };
const enum_names<teacher_kind, 2> teacher_kind_names{
    {{teacher_kind::simulated, "simulated"}, {teacher_kind::learned, "learned"}}};

/// What a run's result depends on: the trainer, the toy world, the teacher, the inference
/// calibration.
struct run_options {
  train::trainer_options train;
  toy::world_options world;
  teacher_kind teacher = teacher_kind::simulated;
  clip::options clip;      ///< mini-CLIP (used with `teacher = learned`)
  double calibration = 0;  ///< γ subtracted from the seen classes' scores at inference
};

template <class V>
void describe(V& v, run_options& o) {
  describe(v, o.train);
  v.nested("world.", o.world);
  v.choice("teacher", o.teacher, teacher_kind_names,
           "the simulated CLIP teacher or mini-CLIP, learned from captions (zss/clip/)", "teacher");
  v.nested("mini_clip.", o.clip, "clip-");
  v.field("calibration", o.calibration, "gamma subtracted from seen classes' scores at inference",
          checks::finite(), "calibration");
}

/// How the program runs (not part of the result).
struct control_options {
  std::string out;
  bool resume = false, ablation = false, quick = false, baseline = true, quiet = false,
       recipe = false, design_synth = false, no_teacher_cache = false, teacher_only = false;
  index_t seeds = 3, panels = 6;
  std::vector<std::string> arms = {"baseline", "glm", "plm", "glm+plm", "plm-tokens"};
  std::uint64_t checkpoint_every = 50;
  double require_gain = -1, require_teacher_map = -1;
  std::string teacher_cache;  ///< directory of trained mini-CLIP teachers ("" = none)
};

/// `$XDG_CACHE_HOME/zss`, else `$HOME/.cache/zss`, else "" (no cache).
std::string default_teacher_cache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/zss";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/zss";
  return {};
}

struct run_result {
  eval::segmentation_metrics metrics;
  double seconds = 0;
  std::uint64_t resumed_at = 0;  ///< the step a --resume continued from (0: from scratch)
  std::vector<tensor<std::int32_t, 2>> predictions;
  /// With PLM: what the pseudo weights know about unseen classes (train/toy.hpp), for the
  /// weights this run used and for the teacher's region tokens.
  std::optional<train::prototype_probe> probe, probe_teacher_tokens;
  std::vector<unsigned char> checkpoint;  ///< the final checkpoint's bytes (with a checkpoint)
};

std::string arm_name(const train::trainer_options& c) {
  const auto& m = c.modules;
  const std::string tt =
      c.plm.prototypes == train::prototype_source::teacher_tokens ? " (teacher tokens)" : "";
  if (m.glm && m.plm) return "GLM+PLM" + tt;
  if (m.glm) return "+GLM";
  if (m.plm) return "+PLM" + tt;
  return "baseline (seen only)";
}

nlohmann::json probe_json(const train::prototype_probe& p) {
  return {{"regions", p.regions},
          {"top1", p.top1},
          {"top1_rate", p.top1_rate()},
          {"chance", p.chance()},
          {"mean_rank", p.mean_rank},
          {"cos_own", p.cos_own},
          {"cos_best_other", p.cos_other},
          {"class_regions", p.class_regions},
          {"class_top1", p.class_top1},
          {"cos_within_class", p.cos_within},
          {"cos_between_classes", p.cos_between}};
}

nlohmann::json teacher_statistics_json(const train::teacher_statistics& t) {
  auto part = [](const train::teacher_statistics::part& p) {
    return nlohmann::json{{"tokens", p.tokens},
                          {"cos_own", p.cos_own},
                          {"cos_best_other", p.cos_other},
                          {"nearest_is_own", p.nearest_is_own}};
  };
  return {{"seen", part(t.seen)},
          {"unseen", part(t.unseen)},
          {"gap_cos", t.gap_cos},
          {"cls_cos_present", t.cls_cos_present},
          {"cls_cos_absent", t.cls_cos_absent}};
}

std::string json_text(const nlohmann::json& j) {
  return j.dump(2) + "\n";
}

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
  if (cfg.modules.plm) {
    if (cfg.plm.prototypes == train::prototype_source::synthesizer)
      r.probe = train::probe_prototypes(tr, w, cls, targets, false);
    r.probe_teacher_tokens = train::probe_prototypes(tr, w, cls, targets, true);
  }
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

/// What the learned teacher measured about itself (empty for the simulated teacher).
struct teacher_report {
  bool learned = false, cached = false;
  double seconds = 0;  ///< training, or loading from the cache
  double first_loss = std::nan(""), last_loss = std::nan("");  ///< means of 10 steps
  fs::path file;                                               ///< the cache file ("" = none)
  clip::image_zero_shot_metrics image;
  clip::cosine_statistics cosines;
};

/// The teacher's image-level zero-shot on the world's test scenes: its CLS embeddings ranked
/// against the class embeddings (clip/evaluate.hpp; a class is present when visible by the
/// captions' rule, `min_pixels`).
clip::image_zero_shot_metrics image_zero_shot(const toy::world<T>& world, index_t min_pixels) {
  const index_t N = world.test.size(), D = world.text.shape()[1];
  tensor<T, 2> cls = tensor<T, 2>::from_shape({N, D});
  std::vector<std::array<bool, toy::class_count>> present;
  for (index_t i = 0; i < N; ++i) {
    std::copy_n(world.test_teacher[i].cls.data(), D, &cls(i, 0));
    present.push_back(clip::visible_classes(world.test[i], min_pixels));
  }
  return clip::image_zero_shot<T>(as_matrix(cls), present, as_matrix(world.text),
                                  world.params.scenes.split);
}

/**
 * With `--teacher learned`: trains mini-CLIP for this world's seed (or loads it from the cache)
 * and makes it the world's teacher (clip/teacher.hpp); then measures its image-level zero-shot
 * and cosine statistics on the test scenes.
 */
teacher_report apply_teacher(const run_options& ro, toy::world<T>& world,
                             const control_options& o) {
  teacher_report r;
  const auto& co = ro.clip;
  if (ro.teacher != teacher_kind::learned) {  // the simulated teacher: image level only
    r.image = image_zero_shot(world, co.captions.min_pixels);
    return r;
  }
  r.learned = true;
  const std::uint64_t seed = world.params.seed;
  const int threads = ro.train.threads;
  const auto t0 = clock_type::now();
  clip::trainer<T> tr(co, seed, threads);
  const auto key = clip::cache_key(co, world.params.scenes, seed, threads);
  if (!o.teacher_cache.empty()) {
    r.file = clip::cache_file(o.teacher_cache, key);
    r.cached = clip::load_cached(tr, r.file, key);
  }
  if (r.cached) {
    std::fprintf(stderr, "mini-CLIP teacher: loaded %s\n", r.file.c_str());
  } else {
    std::fprintf(stderr, "mini-CLIP teacher: %zu captioned scenes, %llu steps of %zu ...\n",
                 co.train.corpus, (unsigned long long)co.steps(), co.train.batch);
    const clip::corpus data(world.params.scenes, co.captions, co.train.corpus, seed, threads);
    progress prog;
    prog.quiet = o.quiet;
    prog.label = "mini-CLIP seed " + std::to_string(seed);
    prog.total = co.steps();
    std::vector<double> losses;
    tr.run(data, [&](std::uint64_t step, const clip::step_stats& st) {
      losses.push_back(st.loss);
      char buf[128];
      std::snprintf(buf, sizeof buf, "loss %.3f  pair acc %.2f  scale %5.1f", st.loss, st.accuracy,
                    st.scale);
      prog.update(step, std::string(buf), std::min(co.train.batch, data.size()));
    });
    const index_t n = std::min<index_t>(10, losses.size());
    r.first_loss = std::accumulate(losses.begin(), losses.begin() + long(n), 0.0) / double(n);
    r.last_loss = std::accumulate(losses.end() - long(n), losses.end(), 0.0) / double(n);
    if (!r.file.empty()) {
      try {
        clip::save_cached(tr, r.file, key);
      } catch (const std::exception& e) {  // a cache that cannot be written only costs time
        std::fprintf(stderr, "mini-CLIP teacher: not cached (%s)\n", e.what());
        r.file.clear();
      }
    }
  }
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  clip::use_learned_teacher(world, tr.net(), co.captions.names, threads);
  // Image level and cosines on the test scenes (held out from the teacher's corpus too).
  r.image = image_zero_shot(world, co.captions.min_pixels);
  std::vector<std::array<bool, toy::class_count>> present;
  std::vector<std::vector<std::int32_t>> captions;
  for (index_t i = 0; i < world.test.size(); ++i) {
    present.push_back(clip::visible_classes(world.test[i], co.captions.min_pixels));
    captions.push_back(
        clip::make_caption(world.test[i], co.captions, seed, toy::test_index_base + i).tokens);
  }
  const auto cap = tr.net().encode_text(captions, threads);
  r.cosines = clip::cosine_stats<T>(world.test, world.test_teacher, as_matrix(cap),
                                    as_matrix(world.text), present);
  return r;
}

nlohmann::json number_json(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

nlohmann::json image_zero_shot_json(const clip::image_zero_shot_metrics& m) {
  nlohmann::json j = {{"map_objects", m.map_objects},
                      {"map_seen", m.map_seen},
                      {"map_unseen", m.map_unseen},
                      {"chance_objects", m.chance_objects},
                      {"chance_seen", m.chance_seen},
                      {"chance_unseen", m.chance_unseen},
                      {"r_precision", m.r_precision},
                      {"r_precision_chance", m.r_precision_chance},
                      {"images", m.images}};
  j["ap"] = nlohmann::json::array();
  for (double v : m.ap) j["ap"].push_back(number_json(v));
  return j;
}

nlohmann::json teacher_json(const teacher_report& r) {
  nlohmann::json j;
  auto num = number_json;
  j["cached"] = r.cached, j["seconds"] = r.seconds, j["first_loss"] = num(r.first_loss),
  j["last_loss"] = num(r.last_loss), j["cache_file"] = r.file.string();
  j["image_zero_shot"] = image_zero_shot_json(r.image);
  const auto& c = r.cosines;
  auto ms = [](const clip::mean_std& x) {
    return nlohmann::json{{"mean", x.mean()}, {"std", x.std()}};
  };
  j["cosines"] = {{"image_caption_matching", ms(c.matching)},
                  {"image_caption_non_matching", ms(c.non_matching)},
                  {"image_prompt_present", ms(c.prompt_present)},
                  {"image_prompt_absent", ms(c.prompt_absent)},
                  {"token_prompt_own", ms(c.token_own)},
                  {"token_prompt_other", ms(c.token_other)},
                  {"prompt_prompt", ms(c.prompt_prompt)},
                  {"modality_gap", c.gap}};
  return j;
}

/// The teacher's own measurements: "teacher_learned" (mini-CLIP: training, image level, cosines)
/// or "teacher_image_zero_shot" (the simulated teacher).
void add_teacher_json(nlohmann::json& j, const teacher_report& r) {
  if (r.learned)
    j["teacher_learned"] = teacher_json(r);
  else
    j["teacher_image_zero_shot"] = image_zero_shot_json(r.image);
}

void print_teacher(const teacher_report& r) {
  const auto& m = r.image;
  if (!r.learned) {
    std::printf(
        "\nsimulated teacher: image-level zero-shot on %zu test scenes, mAP over the object "
        "classes %.1f (seen %.1f, unseen %.1f; chance %.1f / %.1f / %.1f), R-precision %.1f "
        "(chance %.1f)\n",
        m.images, 100 * m.map_objects, 100 * m.map_seen, 100 * m.map_unseen, 100 * m.chance_objects,
        100 * m.chance_seen, 100 * m.chance_unseen, 100 * m.r_precision,
        100 * m.r_precision_chance);
    std::fflush(stdout);
    return;
  }
  const auto& c = r.cosines;
  std::printf(
      "\nmini-CLIP teacher (%s %.0f s): image-level zero-shot on %zu test scenes, mAP over the "
      "object classes %.1f (seen %.1f, unseen %.1f; chance %.1f / %.1f / %.1f), R-precision "
      "%.1f (chance %.1f)\n",
      r.cached ? "loaded in" : "trained in", r.seconds, m.images, 100 * m.map_objects,
      100 * m.map_seen, 100 * m.map_unseen, 100 * m.chance_objects, 100 * m.chance_seen,
      100 * m.chance_unseen, 100 * m.r_precision, 100 * m.r_precision_chance);
  std::printf(
      "cosines: image-caption matching %.3f +- %.3f, non-matching %.3f +- %.3f; dense token-own "
      "class prompt %.3f, other prompts %.3f; prompt-prompt %.3f; modality gap %.3f\n",
      c.matching.mean(), c.matching.std(), c.non_matching.mean(), c.non_matching.std(),
      c.token_own.mean(), c.token_other.mean(), c.prompt_prompt.mean(), c.gap);
  if (!r.cached)
    std::printf("contrastive loss %.3f -> %.3f (mean of the first and last 10 steps)\n",
                r.first_loss, r.last_loss);
  std::fflush(stdout);
}

/// The run's outputs, checked before any work and committed together at the end.
struct run_outputs {
  output_set set;
  std::optional<std::size_t> metrics, timings, ablation, checkpoint, teacher;
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
  if (o.teacher_only) {
    if (out_dir) outs.teacher = add(*out_dir / "teacher.json");
  } else if (o.ablation) {
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
  auto world = toy::make_world<T>(wp, cfg.threads);
  const auto teacher_rep = apply_teacher(ro, world, o);
  const train::toy_classes<T> cls(world);

  const auto t_targets = clock_type::now();
  modality_gap_shift gap;
  const auto targets = train::make_toy_targets<T>(world, cls, cfg, true, cfg.threads, &gap);
  index_t pseudo = 0;
  for (const auto& t : targets) pseudo += t.pseudo_count;
  std::fprintf(stderr, "PLM pseudo labels: %zu pseudo classes over %zu images (%.2f s)\n", pseudo,
               targets.size(),
               std::chrono::duration<double>(clock_type::now() - t_targets).count());
  if (cfg.plm.gap_shift) print_gap_shift(gap);
  const auto teacher = train::evaluate_teacher(world, cls);
  const auto tstats = train::measure_teacher(world, cls);
  const auto config_json = examples::to_json(option_fields(ro));
  std::fprintf(
      stderr,
      "teacher: zero-shot mIoU(S) %.1f mIoU(U) %.1f hIoU %.1f; pure tokens: cos(own text) "
      "%.2f / %.2f (seen / unseen), best other %.2f / %.2f, own nearest %.0f %% / %.0f %%; "
      "cos(CLS, text) present %.2f, absent %.2f; gap cos(Gt, t) %.2f\n",
      100 * teacher.miou_seen, 100 * teacher.miou_unseen, 100 * teacher.hiou, tstats.seen.cos_own,
      tstats.unseen.cos_own, tstats.seen.cos_other, tstats.unseen.cos_other,
      100 * tstats.seen.nearest_is_own, 100 * tstats.unseen.nearest_is_own, tstats.cls_cos_present,
      tstats.cls_cos_absent, tstats.gap_cos);
  if (o.teacher_only) {  // the teacher's own numbers, no student
    print_table({{"teacher zero-shot (tokens)", teacher}});
    print_teacher(teacher_rep);
    if (out_dir) {
      auto j = nlohmann::json::object();
      j["teacher"] = metrics_json(teacher);
      j["teacher_statistics"] = teacher_statistics_json(tstats);
      add_teacher_json(j, teacher_rep);
      j["config"] = config_json;
      outs.set.write_bytes(*outs.teacher, json_text(j));
      outs.set.commit();
    }
    return 0;
  }

  if (o.ablation) {
    // The arms: the paper's four, plus PLM with the teacher's region tokens as the pseudo weights
    // (no synthesizer), which shows what the synthesizer adds.
    struct arm {
      bool glm, plm, teacher_tokens;
    };
    const std::map<std::string, arm> arm_by_name = {{"baseline", {false, false, false}},
                                                    {"glm", {true, false, false}},
                                                    {"plm", {false, true, false}},
                                                    {"glm+plm", {true, true, false}},
                                                    {"plm-tokens", {false, true, true}}};
    std::vector<arm> arms;
    for (const auto& n : o.arms) arms.push_back(arm_by_name.at(n));  // names checked by CLI11
    auto configure = [](run_options r, const arm& a) {
      r.train.modules.glm = a.glm;
      r.train.modules.plm = a.plm;
      if (a.teacher_tokens) r.train.plm.prototypes = train::prototype_source::teacher_tokens;
      return r;
    };
    nlohmann::json aj;
    aj["seeds"] = nlohmann::json::array();
    std::vector<std::vector<eval::segmentation_metrics>> res(arms.size());
    std::vector<nlohmann::json> runs(arms.size(), nlohmann::json::array());
    std::vector<eval::segmentation_metrics> teachers;
    nlohmann::json teacher_runs = nlohmann::json::array();
    for (index_t s = 0; s < o.seeds; ++s) aj["seeds"].push_back(cfg.seed + s);
    for (index_t s = 0; s < o.seeds; ++s) {
      auto rs = ro;
      rs.train.seed = cfg.seed + s;
      auto wps = wp;
      wps.seed = rs.train.seed;
      auto ws = s == 0 ? toy::world<T>() : toy::make_world<T>(wps, cfg.threads);
      const auto rep = s == 0 ? teacher_rep : apply_teacher(ro, ws, o);
      if (rep.learned) aj["teacher_learned"].push_back(teacher_json(rep));
      const auto& wref = s == 0 ? world : ws;
      const train::toy_classes<T> cs(wref);
      const auto tg = s == 0 ? std::vector<image_targets<T>>()
                             : train::make_toy_targets<T>(wref, cs, rs.train, true, cfg.threads);
      const auto& tref = s == 0 ? targets : tg;
      teachers.push_back(s == 0 ? teacher : train::evaluate_teacher(wref, cs));
      teacher_runs.push_back(metrics_json(teachers.back()));
      for (index_t a = 0; a < arms.size(); ++a) {
        const auto ra = configure(rs, arms[a]);
        const std::string name = arm_name(ra.train);
        const auto r = train_and_evaluate(ra, wref, cs, tref, o,
                                          name + " seed " + std::to_string(ra.train.seed), nullptr,
                                          false, false);
        res[a].push_back(r.metrics);
        auto j = metrics_json(r.metrics);
        j["seed"] = ra.train.seed;
        if (r.probe) j["probe"] = probe_json(*r.probe);
        if (r.probe_teacher_tokens) j["probe_teacher_tokens"] = probe_json(*r.probe_teacher_tokens);
        runs[a].push_back(j);
        std::fprintf(stderr, "  %s seed %llu: mIoU(S) %.1f  mIoU(U) %.1f  hIoU %.1f  (%.0f s)\n",
                     name.c_str(), (unsigned long long)ra.train.seed, 100 * r.metrics.miou_seen,
                     100 * r.metrics.miou_unseen, 100 * r.metrics.hiou, r.seconds);
      }
    }
    auto stat = [](const std::vector<double>& v) {
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
      double var = 0;
      for (double x : v) var += (x - mean) * (x - mean);
      return std::pair<double, double>{mean,
                                       v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0};
    };
    auto summary = [&](const std::vector<eval::segmentation_metrics>& ms) {
      std::vector<double> S, U, Hh;
      for (const auto& r : ms)
        S.push_back(100 * r.miou_seen), U.push_back(100 * r.miou_unseen),
            Hh.push_back(100 * r.hiou);
      return std::array<std::pair<double, double>, 3>{stat(S), stat(U), stat(Hh)};
    };
    std::printf("\n| modules | mIoU(S) | mIoU(U) | hIoU |\n|---|---|---|---|\n");
    aj["arms"] = nlohmann::json::array();
    auto row = [&](const std::string& name, const std::vector<eval::segmentation_metrics>& ms) {
      const auto [sv, uv, hv] = summary(ms);
      std::printf("| %s | %.1f ± %.1f | %.1f ± %.1f | %.1f ± %.1f |\n", name.c_str(), sv.first,
                  sv.second, uv.first, uv.second, hv.first, hv.second);
      return nlohmann::json{{"name", name},
                            {"miou_seen_mean", sv.first},
                            {"miou_seen_std", sv.second},
                            {"miou_unseen_mean", uv.first},
                            {"miou_unseen_std", uv.second},
                            {"hiou_mean", hv.first},
                            {"hiou_std", hv.second}};
    };
    for (index_t a = 0; a < arms.size(); ++a) {
      auto j = row(arm_name(configure(ro, arms[a]).train), res[a]);
      j["arm"] = o.arms[a];
      j["glm"] = arms[a].glm, j["plm"] = arms[a].plm, j["teacher_tokens"] = arms[a].teacher_tokens;
      j["runs"] = runs[a];
      aj["arms"].push_back(j);
    }
    auto tj = row("teacher's own zero-shot", teachers);
    tj["runs"] = teacher_runs;
    aj["teacher"] = tj;
    print_teacher(teacher_rep);
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
  const auto main_run = train_and_evaluate(ro, world, cls, targets, o, arm_name(cfg),
                                           ckpt ? &*ckpt : nullptr, o.resume, out_dir.has_value());
  std::vector<std::pair<std::string, eval::segmentation_metrics>> rows = {
      {"this run: " + arm_name(cfg), main_run.metrics}};
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
  auto print_probe = [](const char* what, const train::prototype_probe& p) {
    std::printf(
        "%s: %zu pure unseen pseudo regions, nearest text = their class for %.0f %% "
        "(chance %.0f %%), mean rank %.2f, cos %.2f (best other %.2f); cos between two weights "
        "of one class %.2f, of two classes %.2f\n",
        what, p.regions, 100 * p.top1_rate(), 100 * p.chance(), p.mean_rank, p.cos_own, p.cos_other,
        p.cos_within, p.cos_between);
    std::printf("  per unseen class (nearest = own / regions):");
    for (index_t k = 0; k < toy::class_count; ++k)
      if (p.class_regions[k])
        std::printf(" %s %zu/%zu", toy::class_name(std::int32_t(k)).c_str(), p.class_top1[k],
                    p.class_regions[k]);
    std::printf("\n");
  };
  if (main_run.probe) print_probe("\npseudo weights (synthesizer)", *main_run.probe);
  if (main_run.probe_teacher_tokens)
    print_probe("pseudo weights (teacher tokens)", *main_run.probe_teacher_tokens);
  print_teacher(teacher_rep);
  const double seconds = std::chrono::duration<double>(clock_type::now() - t_start).count();
  std::printf("\n%.1f s in total (this run %.1f s)\n", seconds, main_run.seconds);

  if (out_dir) {
    // Everything in metrics.json is a function of the configuration (no wall-clock time), so a
    // resumed run writes the same bytes as an uninterrupted one; times go to timings.json.
    auto j = metrics_json(main_run.metrics);
    j["config"] = config_json;
    if (base) j["baseline"] = metrics_json(*base);
    j["teacher"] = metrics_json(teacher);
    j["teacher_statistics"] = teacher_statistics_json(tstats);
    if (main_run.probe) j["probe"] = probe_json(*main_run.probe);
    if (main_run.probe_teacher_tokens)
      j["probe_teacher_tokens"] = probe_json(*main_run.probe_teacher_tokens);
    add_teacher_json(j, teacher_rep);
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
                           examples::panel_png(s.image, s.labels, fm, t.grid_h, t.grid_w,
                                               main_run.predictions[i], cls));
    }
    outs.set.write_bytes(*outs.checkpoint, main_run.checkpoint);
    outs.set.commit();
    std::printf("wrote %s/metrics.json, timings.json, %zu panels, checkpoint.zss\n",
                out_dir->c_str(), outs.panels.size());
  }
  if (o.require_teacher_map >= 0) {
    if (!teacher_rep.learned)
      throw std::invalid_argument("--require-teacher-map needs --teacher learned");
    const bool fell = teacher_rep.cached || teacher_rep.last_loss < teacher_rep.first_loss;
    std::printf("teacher's unseen-class mAP %.1f (required %.1f), loss fell: %s\n",
                100 * teacher_rep.image.map_unseen, 100 * o.require_teacher_map,
                fell ? "yes" : "no");
    if (teacher_rep.image.map_unseen < o.require_teacher_map || !fell) return 4;
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
  app.add_flag("--synth-design", o.design_synth,
               "preset: DESIGN §2.4's synthesizer literally (query residual, Xavier init, delta 0, "
               "L_ce gradient into the pseudo prototypes); options given explicitly win");
  app.add_flag("--quick", o.quick,
               "preset for tests: 192 / 48 scenes, 150 steps, warm-up 15, 2 panels (mini-CLIP: "
               "1024 scenes, 150 steps, warm-up 15); options given explicitly win");
  app.add_option("--out", o.out,
                 "write metrics.json, panel PNGs and checkpoint.zss into this directory");
  app.add_flag("--resume", o.resume,
               "continue from DIR/checkpoint.zss (needs --out DIR and the same configuration)");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "with --out, save DIR/checkpoint.zss every N steps (0 = only at the end)")
      ->capture_default_str();
  app.add_option("--panels", o.panels, "test images drawn as panels with --out")
      ->capture_default_str();
  app.add_flag("--ablation", o.ablation,
               "train the --arms for each seed; Markdown table + ablation.json (DIR/ with --out)");
  app.add_option("--arms", o.arms,
                 "arms of --ablation: baseline, glm, plm, glm+plm, plm-tokens (PLM with the "
                 "teacher's region tokens as pseudo weights)")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"baseline", "glm", "plm", "glm+plm", "plm-tokens"}));
  app.add_option("--seeds", o.seeds, "seeds of --ablation (S, S+1, ...)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("!--no-baseline", o.baseline, "do not train the seen-only baseline reference");
  app.add_flag("--quiet", o.quiet, "no progress display");
  app.add_option("--require-unseen-gain", o.require_gain,
                 "exit 3 unless mIoU(U) beats the baseline's by this much (0..1; tests)");
  app.add_option("--require-teacher-map", o.require_teacher_map,
                 "with --teacher learned: exit 4 unless the teacher's image-level mAP over the "
                 "unseen classes reaches this (0..1) and its loss fell (tests)");
  o.teacher_cache = default_teacher_cache();
  app.add_option("--teacher-cache", o.teacher_cache,
                 "directory of trained mini-CLIP teachers (--teacher learned)")
      ->capture_default_str();
  app.add_flag("--teacher-only", o.teacher_only,
               "make the world and its teacher, print the teacher's own zero-shot, token and CLS "
               "cosines (with --out: teacher.json) and stop");
  app.add_flag("--no-teacher-cache", o.no_teacher_cache,
               "train the learned teacher even when a cached one exists, and do not cache it");
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
    if (o.no_teacher_cache) o.teacher_cache.clear();
    if (o.quick) {
      ro.train.schedule.total_steps = 150;
      ro.train.schedule.warmup_steps = 15;
      ro.world.train_images = 192;
      ro.world.test_images = 48;
      ro.clip.train.schedule.total_steps = 150;  // the learned teacher's quick size
      ro.clip.train.schedule.warmup_steps = 15;
      ro.clip.train.corpus = 1024;
      if (app.count("--panels") == 0) o.panels = 2;
    }
    if (o.recipe && o.design_synth)
      throw std::invalid_argument("--synth-recipe and --synth-design are two different presets");
    if (o.recipe) ro.train.use_synthesizer_recipe();
    if (o.design_synth) ro.train.use_design_synthesizer();
    for (auto& [f, text] : explicit_values) f->set(text);
    // The warm-up default never exceeds the run (an explicit --warmup above --steps is an error).
    const auto* warm = fields.find("schedule.warmup_steps");
    if (!examples::given(app, *warm))
      ro.train.schedule.warmup_steps =
          std::min(ro.train.schedule.warmup_steps, ro.train.schedule.total_steps);
    if (!examples::given(app, *fields.find("mini_clip.train.warmup")))
      ro.clip.train.schedule.warmup_steps =
          std::min(ro.clip.train.schedule.warmup_steps, ro.clip.train.schedule.total_steps);
    ro.train.encoder.embed_dim = ro.world.text.dim;  // the student's width is the text's
    ro.clip.model.dim = ro.world.text.dim;           // and so is mini-CLIP's
    if (ro.teacher == teacher_kind::learned) ro.clip.validate();
    ro.train.validate();
    return run(ro, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nzss-train-toy: error: %s\n", e.what());
    return 1;
  }
}
