// SPDX-License-Identifier: Apache-2.0
// End-to-end checks of the dataset tools (ctest entries in CMakeLists.txt):
//
//   zss-check-dataset-tools train  EXPORT TRAIN TOY WORK MPIEXEC
//     The toy world exported (lossless images) and trained with zss-train gives zss-train-toy's
//     metrics bitwise. With MPIEXEC ('|'-separated command, empty without MPI): two runs on 2
//     ranks give identical metrics, close to the 1-process run's, and --resume on 1 process
//     refuses their checkpoint.
//
//   zss-check-dataset-tools pseudo EXPORT PSEUDO WORK MPIEXEC
//     zss-pseudo-labels --data: each output equals the single-file tool's on that item; 2 ranks
//     write the same files as 1 process; a rank killed midway leaves only complete outputs, and a
//     rerun recomputes exactly the missing and corrupt ones (outputs it keeps are replaced by a
//     sentinel first, so a recomputed one would show), removes the stale temporaries and reports
//     the counts in its summary.
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "zss/io/npy.hpp"

namespace fs = std::filesystem;
using zss::index_t;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

std::vector<std::string> split_bar(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, '|'))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs a command (argument list); returns its exit status (-1 when it did not exit normally).
int run(const std::vector<std::string>& args, const fs::path& log) {
  std::string cmd;
  for (const auto& a : args) cmd += quote(a) + " ";
  cmd += "> " + quote(log.string()) + " 2>&1";
  std::printf("$ %s\n", cmd.c_str());
  std::fflush(stdout);
  const int status = std::system(cmd.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::json read_json(const fs::path& p) {
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const std::exception& e) {
    check(false, "read " + p.string() + ": " + e.what());
    return nlohmann::json::object();
  }
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const char* metric_keys[] = {"miou_seen", "miou_unseen",   "hiou",   "pixel_acc",
                             "miou",      "per_class_iou", "teacher"};

int check_train(const std::string& exporter, const std::string& train, const std::string& toy,
                const fs::path& work, const std::vector<std::string>& mpiexec) {
  fs::remove_all(work);
  fs::create_directories(work);
  const std::vector<std::string> world = {"--train-images", "16", "--test-images", "4",
                                          "--height",       "32", "--width",       "32",
                                          "--seed",         "3"};
  const std::vector<std::string> cfg = {"--steps", "8", "--warmup",  "2", "--batch", "4",
                                        "--bank",  "8", "--threads", "2", "--quiet"};
  const fs::path data = work / "data";
  check(run(with(with({exporter, "--out", data.string(), "--images", "npy"}, world), {}),
            work / "export.log") == 0,
        "zss-toy-export (npy images)");
  check(run(with(with({toy, "--no-baseline", "--panels", "1", "--out", (work / "toy").string()},
                      world),
                 cfg),
            work / "toy.log") == 0,
        "zss-train-toy");
  check(run(with({train, "--data", data.string(), "--seed", "3", "--panels", "1", "--out",
                  (work / "disk").string()},
                 cfg),
            work / "disk.log") == 0,
        "zss-train --data");
  // The checkpoints hold the same parameters, AdamW state, step, configuration and bank bitwise:
  // the bytes before the application's own section (its name's length) and from the trainer's
  // sections on (up to the file checksum) are equal.
  {
    const auto x = read_file(work / "toy" / "checkpoint.zss"),
               y = read_file(work / "disk" / "checkpoint.zss");
    const auto px = x.find("zss-train-toy.config"), py = y.find("zss-train.config");
    const auto qx = x.find("trainer.config"), qy = y.find("trainer.config");
    check(px != std::string::npos && py != std::string::npos && qx != std::string::npos &&
              qy != std::string::npos && px == py && px > 4 &&
              x.compare(0, px - 4, y, 0, py - 4) == 0 &&  // (u32 length of the section's name)
              x.size() - qx == y.size() - qy &&
              x.compare(qx, x.size() - qx - 8, y, qy, y.size() - qy - 8) == 0,
          "zss-train's checkpoint holds zss-train-toy's parameters, optimiser state and bank "
          "bitwise");
  }
  const auto a = read_json(work / "toy" / "metrics.json"),
             b = read_json(work / "disk" / "metrics.json");
  for (const char* k : metric_keys)
    check(a.contains(k) && b.contains(k) && a[k].dump() == b[k].dump(),
          std::string("zss-train reproduces zss-train-toy's ") + k + " bitwise (" +
              (a.contains(k) ? a[k].dump().substr(0, 40) : "?") + " vs " +
              (b.contains(k) ? b[k].dump().substr(0, 40) : "?") + ")");
  if (mpiexec.empty()) return failures;
  for (const char* run_name : {"np2a", "np2b"})
    check(run(with(with(mpiexec, {train, "--data", data.string(), "--seed", "3", "--panels", "0",
                                  "--out", (work / run_name).string()}),
                   cfg),
              work / (std::string(run_name) + ".log")) == 0,
          std::string("mpiexec -n 2 zss-train (") + run_name + ")");
  check(read_file(work / "np2a" / "checkpoint.zss") == read_file(work / "np2b" / "checkpoint.zss"),
        "two runs on 2 ranks write the same checkpoint, byte for byte");
  const auto c = read_json(work / "np2a" / "metrics.json"),
             d = read_json(work / "np2b" / "metrics.json");
  check(c.value("ranks", 0) == 2, "metrics.json records 2 ranks");
  for (const char* k : metric_keys)
    check(c.contains(k) && d.contains(k) && c[k].dump() == d[k].dump(),
          std::string("two runs on 2 ranks agree bitwise on ") + k);
  for (const char* k : {"miou_seen", "miou_unseen", "pixel_acc"})
    check(
        c.contains(k) && b.contains(k) && std::abs(c[k].get<double>() - b[k].get<double>()) <= 0.01,
        std::string("2 ranks and 1 process train the same model: ") + k + " " +
            (c.contains(k) ? c[k].dump() : "?") + " vs " + (b.contains(k) ? b[k].dump() : "?"));
  const fs::path log = work / "resume.log";
  const int rc = run(with({train, "--data", data.string(), "--seed", "3", "--resume", "--out",
                           (work / "np2a").string()},
                          cfg),
                     log);
  check(rc != 0 && read_file(log).find("written by 2 ranks") != std::string::npos,
        "--resume on 1 process refuses a 2-rank checkpoint with a message");
  // With the same number of ranks --resume is accepted: the finished run reloads its last step
  // and reports the same metrics and checkpoint (the bitwise continuation from a middle step is
  // tests/dist/test_dist_trainer.cpp's).
  check(run(with(with(mpiexec, {train, "--data", data.string(), "--seed", "3", "--panels", "0",
                                "--resume", "--out", (work / "np2b").string()}),
                 cfg),
            work / "resume_np2.log") == 0,
        "mpiexec -n 2 zss-train --resume of a 2-rank run");
  const auto e = read_json(work / "np2b" / "metrics.json");
  for (const char* k : metric_keys)
    check(e.contains(k) && e[k].dump() == c[k].dump(),
          std::string("the 2-rank run resumed on 2 ranks reports the same ") + k);
  check(read_file(work / "np2a" / "checkpoint.zss") == read_file(work / "np2b" / "checkpoint.zss"),
        "the 2-rank run resumed on 2 ranks keeps its checkpoint bitwise");
  return failures;
}

/// The output maps of a folder: stem → bytes (hidden files excluded).
std::map<std::string, std::string> outputs(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name[0] == '.' || e.path().extension() != ".npy") continue;
    out[e.path().stem().string()] = read_file(e.path());
  }
  return out;
}

index_t hidden_files(const fs::path& dir) {
  index_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string()[0] == '.';
  return n;
}

int check_pseudo(const std::string& exporter, const std::string& tool, const fs::path& work,
                 const std::vector<std::string>& mpiexec) {
  fs::remove_all(work);
  fs::create_directories(work);
  const fs::path data = work / "data";
  check(run({exporter, "--out", data.string(), "--train-images", "30", "--test-images", "1",
             "--seed", "4", "--labels", "npy"},
            work / "export.log") == 0,
        "zss-toy-export");
  const std::vector<std::string> opts = {"--windows", "2,4", "--min-tokens", "4", "--threads", "2"};
  // 1 process.
  check(run(with({tool, "--data", data.string(), "--split", "train", "--out",
                  (work / "one").string()},
                 opts),
            work / "one.log") == 0,
        "zss-pseudo-labels --data (1 process)");
  const auto ref = outputs(work / "one");
  check(ref.size() == 30, "one output per image (" + std::to_string(ref.size()) + ")");
  // The single-file tool on item 7: its tokens and its labels with the unseen classes hidden and
  // seen ids as class-set indices; the dataset output maps seen indices back to class ids.
  {
    const auto classes = read_file(data / "classes.txt");
    const auto unseen_text = read_file(data / "unseen.txt");
    std::vector<std::string> names;
    std::stringstream cs(classes), us(unseen_text);
    for (std::string l; std::getline(cs, l);) names.push_back(l);
    std::set<std::string> unseen;
    for (std::string l; std::getline(us, l);) unseen.insert(l);
    std::vector<std::int32_t> seen_index(names.size(), -1), seen_ids;
    for (std::size_t k = 0; k < names.size(); ++k)
      if (!unseen.count(names[k]))
        seen_index[k] = std::int32_t(seen_ids.size()), seen_ids.push_back(std::int32_t(k));
    auto labels = zss::load_npy<std::int32_t, 2>(data / "train" / "labels" / "000007.npy");
    for (auto& l : labels) l = l < 0 ? -1 : seen_index[std::size_t(l)];
    zss::save_npy(work / "labels7.npy", labels);
    check(run(with({tool, (data / "train" / "tokens" / "000007.npy").string(),
                    (work / "labels7.npy").string(), "--num-seen", std::to_string(seen_ids.size()),
                    "--out", (work / "single7.npy").string()},
                   opts),
              work / "single.log") == 0,
          "zss-pseudo-labels on one item");
    auto single = zss::load_npy<std::int32_t, 2>(work / "single7.npy");
    const auto Ks = std::int32_t(seen_ids.size()), K = std::int32_t(names.size());
    for (auto& l : single) l = l < 0 ? -1 : (l < Ks ? seen_ids[std::size_t(l)] : K + (l - Ks));
    check(zss::load_npy<std::int32_t, 2>(work / "one" / "000007.npy") == single,
          "the dataset output of item 7 equals the single-file tool's map");
  }
  const auto summary = read_json(work / "one" / "summary.json");
  check(summary.value("images", -1) == 30 && summary.value("computed", -1) == 30,
        "the summary counts 30 images, 30 computed");
  if (mpiexec.empty()) return failures;

  // 2 ranks: the same files.
  check(run(with(with(mpiexec, {tool, "--data", data.string(), "--out", (work / "two").string()}),
                 opts),
            work / "two.log") == 0,
        "mpiexec -n 2 zss-pseudo-labels --data");
  check(outputs(work / "two") == ref,
        "2 ranks write the same 30 files as 1 process, byte for byte");

  // A rank killed in the middle of its 4th output.
  const fs::path kill = work / "kill";
  const int rc = run(with(with(mpiexec, {tool, "--data", data.string(), "--out", kill.string(),
                                         "--kill-after", "3", "--kill-rank", "1"}),
                          opts),
                     work / "kill.log");
  check(rc != 0, "the killed run fails (exit " + std::to_string(rc) + ")");
  auto left = outputs(kill);
  bool complete = !left.empty() && left.size() < ref.size();
  for (const auto& [stem, bytes] : left)
    complete = complete && ref.count(stem) && ref.at(stem) == bytes;
  check(complete, std::to_string(left.size()) +
                      " outputs left behind, each complete and equal to the reference; " +
                      std::to_string(hidden_files(kill)) + " temporaries");
  // Outputs to keep become sentinels (valid maps a recomputation would overwrite); one is
  // truncated (corrupt: must be redone).
  const std::string corrupt = left.begin()->first;
  fs::resize_file(kill / (corrupt + ".npy"), left.begin()->second.size() / 2);
  for (const auto& [stem, bytes] : left) {
    if (stem == corrupt) continue;
    auto m = zss::load_npy<std::int32_t, 2>(kill / (stem + ".npy"));
    m.fill(-1);
    zss::save_npy(kill / (stem + ".npy"), m);
  }
  const auto sentinels = outputs(kill);
  check(run(with(with(mpiexec, {tool, "--data", data.string(), "--out", kill.string()}), opts),
            work / "rerun.log") == 0,
        "the rerun succeeds");
  const auto after = outputs(kill);
  bool kept = true, redone = after.size() == ref.size();
  for (const auto& [stem, bytes] : after) {
    if (sentinels.count(stem) && stem != corrupt)
      kept = kept && bytes == sentinels.at(stem);
    else
      redone = redone && ref.count(stem) && bytes == ref.at(stem);
  }
  check(kept, "the rerun kept the " + std::to_string(left.size() - 1) + " complete outputs");
  check(redone, "the rerun wrote every missing output and the corrupt one, equal to the reference");
  check(hidden_files(kill) == 0, "no temporary is left");
  const auto s2 = read_json(kill / "summary.json");
  check(s2.value("skipped", -1) == std::int64_t(left.size() - 1) &&
            s2.value("computed", -1) == std::int64_t(ref.size() - left.size() + 1),
        "the rerun's summary counts " + std::to_string(left.size() - 1) + " skipped, " +
            std::to_string(ref.size() - left.size() + 1) + " computed (" + s2.dump().substr(0, 80) +
            ")");
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 6 && a[0] == "train")
    return check_train(a[1], a[2], a[3], a[4], split_bar(a[5])) ? 1 : 0;
  if (a.size() == 5 && a[0] == "pseudo")
    return check_pseudo(a[1], a[2], a[3], split_bar(a[4])) ? 1 : 0;
  std::fprintf(stderr,
               "usage: zss-check-dataset-tools train EXPORT TRAIN TOY WORK MPIEXEC\n"
               "       zss-check-dataset-tools pseudo EXPORT PSEUDO WORK MPIEXEC\n");
  return 2;
}
