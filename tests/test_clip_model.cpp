// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/model.hpp: the parameter table, the initial logit scale, the class prompt
// embeddings, the image tensor of scenes.
#include <doctest/doctest.h>

#include <cmath>

#include "zss/clip/model.hpp"

namespace test_clip_model {

using namespace zss;
using namespace zss::clip;

TEST_CASE("mini-CLIP at the default size: about 85 k parameters in one buffer") {
  const model_options o;
  const model<float> m(o, 0);
  const auto& pb = m.parameters();
  MESSAGE("parameters: " << pb.parameter_count());
  CHECK(pb.parameter_count() > 60000);
  CHECK(pb.parameter_count() < 100000);
  CHECK(pb.entries().front().name == "image.trunk.conv1.weight");
  CHECK(pb.entries().back().name == "logit_scale");
  CHECK(pb.id("text.embedding") > pb.id("image.pool.o.bias"));
  CHECK(m.log_scale() == doctest::Approx(std::log(1 / 0.07)));
  // Same seed, same weights; another seed, others.
  const model<float> m2(o, 0), m3(o, 1);
  CHECK(std::equal(pb.values(), pb.values() + pb.size(), m2.parameters().values()));
  CHECK_FALSE(std::equal(pb.values(), pb.values() + pb.size(), m3.parameters().values()));
}

TEST_CASE("class embeddings: unit rows from 'a photo of a {name}', distinct per class") {
  model_options o;
  o.dim = 8;
  const model<double> m(o, 2);
  for (auto mode : {name_tokens::phrase, name_tokens::words}) {
    const auto t = m.class_embeddings(mode);
    REQUIRE(t.shape()[0] == 21);
    for (index_t k = 0; k < 21; ++k) {
      double n = 0;
      for (index_t d = 0; d < 8; ++d) n += t(k, d) * t(k, d);
      CHECK(n == doctest::Approx(1.0));
      for (index_t j = 0; j < k; ++j) {
        double c = 0;
        for (index_t d = 0; d < 8; ++d) c += t(k, d) * t(j, d);
        CHECK(c < 1 - 1e-9);
      }
    }
    const auto one = m.encode_text({class_prompt(7, mode)});
    for (index_t d = 0; d < 8; ++d) CHECK(one(0, d) == doctest::Approx(t(7, d)));
  }
}

TEST_CASE("scene images: 2(x - 0.5), mirrored on request") {
  toy::scene_options so;
  so.height = so.width = 8;
  const auto a = toy::make_scene(so, 1, 0), b = toy::make_scene(so, 1, 1);
  const toy::scene* s[2] = {&a, &b};
  const char flips[2] = {0, 1};
  const auto im = scene_images<float>(std::span<const toy::scene* const>(s, 2),
                                      std::span<const char>(flips, 2));
  CHECK(im(0, 2, 3, 1) == 2 * (a.image(2, 3, 1) - 0.5f));
  CHECK(im(1, 2, 3, 1) == 2 * (b.image(2, 4, 1) - 0.5f));
}

}  // namespace test_clip_model
