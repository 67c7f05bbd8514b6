// SPDX-License-Identifier: Apache-2.0
// Tests for zss/data/dataset.hpp: a dataset written with write_dataset_info/write_item reads back
// (PNG within rounding, .npy exactly); every malformed file is refused up front (or at load, for
// values) with a message naming the file and what is wrong.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>

#include "support/random_data.hpp"
#include "support/temp_dir.hpp"
#include "zss/data/dataset.hpp"

namespace test_data_dataset {

using namespace zss;
namespace fs = std::filesystem;

namespace {

constexpr index_t K = 3, D = 4, H = 6, W = 5, h = 3, w = 2;

struct one_item {
  tensor<float, 3> image = tensor<float, 3>::from_shape({H, W, 3});
  tensor<std::int32_t, 2> labels = tensor<std::int32_t, 2>::from_shape({H, W});
  tensor<float, 3> tokens = tensor<float, 3>::from_shape({h, w, D});
  tensor<float, 1> cls = tensor<float, 1>::from_shape({D});
  explicit one_item(std::uint64_t seed) {
    const auto u = test::uniform_vector<float>(image.size(), seed, 0.0f, 1.0f);
    std::copy(u.begin(), u.end(), image.begin());
    for (index_t i = 0; i < labels.size(); ++i) labels.data()[i] = std::int32_t((i + seed) % 4) - 1;
    const auto t = test::uniform_vector<float>(tokens.size(), seed + 1);
    std::copy(t.begin(), t.end(), tokens.begin());
    const auto c = test::uniform_vector<float>(cls.size(), seed + 2);
    std::copy(c.begin(), c.end(), cls.begin());
  }
};

/// A valid dataset: classes a, b, c (c unseen), split "train" with items x (PNG, PNG) and
/// y (npy, npy).
void write_valid(const fs::path& root) {
  const auto text = test::normal_matrix<float>(K, D, 1);
  data::write_dataset_info(root, {"a", "b c", "c#1"}, text, {false, false, true}, false);
  const one_item x(10), y(20);
  data::write_item(root, "train", "x", x.image, x.labels, x.tokens, x.cls, data::file_kind::png,
                   data::file_kind::png);
  data::write_item(root, "train", "y", y.image, y.labels, y.tokens, y.cls, data::file_kind::npy,
                   data::file_kind::npy);
}

void open_train(const fs::path& root) {
  (void)data::open_dataset(root, {"train"});
}

void write_text(const fs::path& p, const std::string& s) {
  test::write_bytes(p, s);
}

}  // namespace

TEST_CASE("a written dataset reads back: classes, split, items (PNG rounded, .npy exact)") {
  test::temp_dir dir;
  write_valid(dir.path);
  const auto d = data::open_dataset(dir.path, {"train"});
  CHECK(d.class_names == std::vector<std::string>{"a", "b c", "c#1"});
  CHECK(d.seen == std::vector<bool>{true, true, false});
  CHECK(d.seen_ids() == std::vector<std::int32_t>{0, 1});
  CHECK(d.dim == D);
  CHECK_FALSE(d.tokens_normalized);
  CHECK(d.text_embeddings<float>() == test::normal_matrix<float>(K, D, 1));
  const auto& s = d.split("train");
  CHECK(s.stems == std::vector<std::string>{"x", "y"});
  CHECK(s.height == H);
  CHECK(s.width == W);
  CHECK(s.grid_h == h);
  CHECK(s.grid_w == w);
  const one_item x(10), y(20);
  const auto ix = data::load_item<float>(d, s, 0);
  const auto iy = data::load_item<double>(d, s, 1);
  for (index_t i = 0; i < x.image.size(); ++i)
    CHECK(std::abs(ix.image.data()[i] - x.image.data()[i]) <= 0.5f / 255.0f + 1e-6f);
  CHECK(iy.image == y.image);
  CHECK(ix.labels == x.labels);  // −1 written as 255 in the PNG, read back as −1
  CHECK(iy.labels == y.labels);
  CHECK(ix.tokens == x.tokens);
  CHECK(ix.cls == x.cls);
  for (index_t i = 0; i < y.tokens.size(); ++i)
    CHECK(iy.tokens.data()[i] == double(y.tokens.data()[i]));
  CHECK_THROWS_WITH_AS(d.split("val"), doctest::Contains("split 'val' was not opened"),
                       std::invalid_argument);
}

TEST_CASE("malformed datasets are refused up front, naming the file and the field") {
  test::temp_dir dir;
  write_valid(dir.path);
  const fs::path r = dir.path, tr = r / "train";
  auto expect = [&](const std::string& file_part, const std::string& what) {
    CHECK_THROWS_WITH_AS(open_train(r), doctest::Contains(file_part.c_str()),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(open_train(r), doctest::Contains(what.c_str()), std::invalid_argument);
  };
  SUBCASE("no dataset.txt") {
    fs::remove(r / "dataset.txt");
    expect("dataset.txt'", "missing");
  }
  SUBCASE("another format") {
    write_text(r / "dataset.txt", "format = zss-dataset 2\n");
    expect("dataset.txt'", "format is 'zss-dataset 2'");
  }
  SUBCASE("an unknown key") {
    write_text(r / "dataset.txt", "format = zss-dataset 1\nnormalised = yes  # typo\n");
    expect("dataset.txt'", "unknown key 'normalised'");
  }
  SUBCASE("a class listed twice") {
    write_text(r / "classes.txt", "a\nb c\na\n");
    expect("classes.txt'", "line 3: class 'a' is listed twice");
  }
  SUBCASE("text embeddings of another count") {
    save_npy(r / "text_embeddings.npy", test::normal_matrix<float>(2, D, 1));
    expect("text_embeddings.npy'", "expected 3 x D");
  }
  SUBCASE("integer text embeddings") {
    save_npy(r / "text_embeddings.npy", xt::xtensor<std::int32_t, 2>::from_shape({K, D}));
    expect("text_embeddings.npy'", "expected float32/float64");
  }
  SUBCASE("an unseen class that does not exist") {
    write_text(r / "unseen.txt", "c#1\nd\n");
    expect("unseen.txt'", "line 2: 'd' is not a class");
  }
  SUBCASE("every class unseen") {
    write_text(r / "unseen.txt", "a\nb c\nc#1\n");
    expect("unseen.txt'", "every class unseen");
  }
  SUBCASE("a split without images/") {
    fs::remove_all(tr / "images");
    expect("train/images'", "missing");
  }
  SUBCASE("a label map without its image") {
    fs::copy_file(tr / "labels" / "y.npy", tr / "labels" / "z.npy");
    expect("labels/z.npy'", "has no image");
  }
  SUBCASE("an item without tokens") {
    fs::remove(tr / "tokens" / "x.npy");
    expect("tokens/x.npy'", "missing");
  }
  SUBCASE("two label files for one item") {
    fs::copy_file(tr / "labels" / "y.npy", tr / "labels" / "x.npy");
    expect("labels/x.*'", "more than one file");
  }
  SUBCASE("an unexpected extension") {
    fs::rename(tr / "cls" / "x.npy", tr / "cls" / "x.png");
    expect("cls/x.png'", "unexpected extension");
  }
  SUBCASE("tokens of another width") {
    save_npy(tr / "tokens" / "y.npy", xt::xtensor<float, 3>::from_shape({h, w, D + 1}));
    expect("tokens/y.npy'", "expected h x w x 4 tokens");
  }
  SUBCASE("another token grid") {
    save_npy(tr / "tokens" / "y.npy", xt::xtensor<float, 3>::from_shape({h + 1, w, D}));
    expect("tokens/y.npy'", "has a 4 x 2 grid, the split's first item 3 x 2");
  }
  SUBCASE("an image of another size") {
    save_npy(tr / "images" / "y.npy", xt::xtensor<float, 3>::from_shape({H, W + 1, 3}));
    expect("images/y.npy'", "is 6 x 6, the split's first image");
  }
  SUBCASE("an image .npy that is not H x W x 3") {
    save_npy(tr / "images" / "y.npy", xt::xtensor<float, 2>::from_shape({H, W}));
    expect("images/y.npy'", "expected H x W x 3 RGB");
  }
  SUBCASE("a label map of another size") {
    save_npy(tr / "labels" / "y.npy", xt::xtensor<std::int32_t, 2>::from_shape({H, W - 1}));
    expect("labels/y.npy'", "is 6 x 4, its image is 6 x 5");
  }
  SUBCASE("float labels") {
    save_npy(tr / "labels" / "y.npy", xt::xtensor<float, 2>::from_shape({H, W}));
    expect("labels/y.npy'", "expected H x W integer class ids");
  }
  SUBCASE("an RGB label PNG") {
    write_png(tr / "labels" / "x.png", tensor<std::uint8_t, 3>::from_shape({H, W, 3}));
    expect("labels/x.png'", "3 channels, expected a grey PNG");
  }
  SUBCASE("a CLS of another shape") {
    save_npy(tr / "cls" / "x.npy", xt::xtensor<float, 2>::from_shape({1, D}));
    expect("cls/x.npy'", "expected (4,)");
  }
  SUBCASE("a truncated .npy") {
    const auto bytes = test::read_bytes(tr / "tokens" / "y.npy");
    test::write_bytes(tr / "tokens" / "y.npy", bytes.substr(0, bytes.size() - 4));
    expect("tokens/y.npy'", "truncated");
  }
  SUBCASE("not a dataset folder") {
    CHECK_THROWS_WITH_AS(data::open_dataset(r / "nope", {}), doctest::Contains("does not exist"),
                         std::invalid_argument);
  }
}

TEST_CASE("values are checked when an item is loaded, naming the file and the position") {
  test::temp_dir dir;
  write_valid(dir.path);
  const fs::path tr = dir.path / "train";
  auto load_y = [&] {
    const auto d = data::open_dataset(dir.path, {"train"});
    return data::load_item<float>(d, d.split("train"), 1);
  };
  SUBCASE("a label outside [0, K)") {
    auto l = load_npy<std::int32_t, 2>(tr / "labels" / "y.npy");
    l(2, 3) = 3;
    save_npy(tr / "labels" / "y.npy", l);
    CHECK_THROWS_WITH_AS(load_y(), doctest::Contains("labels/y.npy': pixel (2, 3) has label 3"),
                         std::invalid_argument);
  }
  SUBCASE("255 and -1 are both ignored in a .npy") {
    auto l = load_npy<std::int32_t, 2>(tr / "labels" / "y.npy");
    l(0, 0) = 255;
    l(0, 1) = -1;
    save_npy(tr / "labels" / "y.npy", l);
    const auto it = load_y();
    CHECK(it.labels(0, 0) == -1);
    CHECK(it.labels(0, 1) == -1);
  }
  SUBCASE("a non-finite token") {
    auto t = load_npy<float, 3>(tr / "tokens" / "y.npy");
    t(1, 1, 2) = std::numeric_limits<float>::infinity();
    save_npy(tr / "tokens" / "y.npy", t);
    CHECK_THROWS_WITH_AS(load_y(), doctest::Contains("tokens/y.npy': token (1, 1) is not finite"),
                         std::invalid_argument);
  }
  SUBCASE("tokens that are not unit rows while dataset.txt says they are") {
    write_text(dir.path / "dataset.txt", "format = zss-dataset 1\ntokens_normalized = true\n");
    CHECK_THROWS_WITH_AS(load_y(), doctest::Contains("declares tokens_normalized = true"),
                         std::invalid_argument);
  }
  SUBCASE("a pixel outside [0, 1]") {
    auto im = load_npy<float, 3>(tr / "images" / "y.npy");
    im(0, 1, 2) = 1.5f;
    save_npy(tr / "images" / "y.npy", im);
    CHECK_THROWS_WITH_AS(load_y(), doctest::Contains("outside [0, 1]"), std::invalid_argument);
  }
  SUBCASE("a NaN CLS value") {
    auto c = load_npy<float, 1>(tr / "cls" / "y.npy");
    c(3) = std::nanf("");
    save_npy(tr / "cls" / "y.npy", c);
    CHECK_THROWS_WITH_AS(load_y(), doctest::Contains("cls/y.npy': value 3 is not finite"),
                         std::invalid_argument);
  }
}

TEST_CASE("write_dataset_info and write_item refuse what the format cannot hold") {
  test::temp_dir dir;
  const auto text = test::normal_matrix<float>(2, D, 1);
  CHECK_THROWS_AS(data::write_dataset_info(dir.path, {"a", "a"}, text, {false, true}, false),
                  std::invalid_argument);
  CHECK_THROWS_AS(data::write_dataset_info(dir.path, {"a", " b"}, text, {false, true}, false),
                  std::invalid_argument);
  CHECK_THROWS_AS(data::write_dataset_info(dir.path, {"a"}, text, {false}, false),
                  std::invalid_argument);
  one_item x(1);
  x.labels(0, 0) = 300;
  CHECK_THROWS_WITH_AS(data::write_item(dir.path, "train", "x", x.image, x.labels, x.tokens, x.cls,
                                        data::file_kind::npy, data::file_kind::png),
                       doctest::Contains("does not fit an 8-bit PNG"), std::invalid_argument);
}

}  // namespace test_data_dataset
