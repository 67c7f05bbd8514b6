// SPDX-License-Identifier: Apache-2.0
// zss-toy-export: writes the toy world (DESIGN.md §4) as a dataset folder (data/dataset.hpp):
// train/ and test/ splits with images, label maps, the simulated teacher's tokens and CLS, plus
// the class names, text embeddings and unseen classes.
//
//   zss-toy-export --out DIR --seed 0 [--train-images 512 --test-images 128 …] [--images npy]
//
// The world is the one zss-train-toy trains on with the same seed and world options, so
// `zss-train --data DIR` reproduces `zss-train-toy` (bitwise with --images npy; PNG images are
// rounded to 8 bits). Every file is written atomically.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "common/option_binding.hpp"
#include "common/tool_common.hpp"
#include "zss/toy/dataset.hpp"
#include "zss/toy/export.hpp"

namespace {

/// The exported world's options: the toy world's described fields and the seed.
struct export_options {
  zss::toy::world_options world;
};

template <class V>
void describe(V& v, export_options& o) {
  describe(v, o.world);
  v.field("seed", o.world.seed, "seeds the scenes, text embeddings and teacher", {}, "seed");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zss-toy-export: the toy world as a dataset folder (zss-train --data reads it)"};
  export_options eo;
  zss::option_fields fields(eo);
  zss::examples::add_options(app, fields, "Toy world (as zss-train-toy's world options)");
  std::string out, images = "png", labels = "png";
  int threads = 0;
  app.add_option("--out", out, "dataset folder to write (created; existing files are replaced)")
      ->required();
  app.add_option("--images", images,
                 "image files: png (8-bit, what datasets ship) or npy (float32, lossless)")
      ->check(CLI::IsMember({"png", "npy"}))
      ->capture_default_str();
  app.add_option("--labels", labels, "label files: png (8-bit grey, 255 ignored) or npy (int32)")
      ->check(CLI::IsMember({"png", "npy"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads (0 = default)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  return zss::tools::run_tool("zss-toy-export", [&] {
    fields.validate("zss-toy-export");
    const auto world = zss::toy::make_world<float>(eo.world, threads);
    const auto kind = [](const std::string& k) {
      return k == "npy" ? zss::data::file_kind::npy : zss::data::file_kind::png;
    };
    zss::toy::export_world(world, out, kind(images), kind(labels), threads);
    std::printf("wrote %s: %zu train + %zu test images (%s, labels %s), %zu classes, D %zu\n",
                out.c_str(), world.train.size(), world.test.size(), images.c_str(), labels.c_str(),
                zss::toy::class_count, world.text.shape()[1]);
    return 0;
  });
}
