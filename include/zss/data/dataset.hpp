// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/data/dataset.hpp
 * A zero-shot segmentation dataset on disk (DESIGN.md §7): what a user writes after dumping CLIP
 * features with PyTorch, and what `zss-toy-export` writes for the toy world. Reading validates
 * everything up front and names the bad file and field; writing is atomic per file.
 *
 * Legend: K classes, D the embedding width, H × W pixels, h × w the teacher's token grid.
 *
 *     DIR/
 *       dataset.txt            "format = zss-dataset 1", then optional "key = value" lines:
 *                                tokens_normalized = true|false  (every token row has norm 1;
 *                                  checked when an item is loaded; default false)
 *       classes.txt            one class name per line; line k is class id k (K lines)
 *       text_embeddings.npy    K × D float32/float64, row k = class k's text embedding
 *       unseen.txt             the unseen classes' names, one per line (the others are seen);
 *                              may be empty. Training never sees their labels nor their names.
 *       <split>/               one folder per split (e.g. train/, val/): a folder with images/
 *         images/<stem>.png    8-bit RGB (grey/RGBA converted), or <stem>.npy H × W × 3
 *                              float32/float64 in [0, 1] (lossless)
 *         labels/<stem>.png    8- or 16-bit grey, or <stem>.npy H × W integers: class ids in
 *                              [0, K); 255 (and −1 in .npy) = ignored
 *         tokens/<stem>.npy    h × w × D float32/float64: the teacher's dense tokens
 *         cls/<stem>.npy       D float32/float64: the teacher's CLS embedding
 *
 * An item is a stem of `images/`; items are ordered by stem (byte order). Every item has one file
 * in each of the four folders, and no folder holds a file without an image. Within a split all
 * images have the same H × W and all token grids the same h × w; D is the text embeddings' width.
 * Lines of the text files are stripped of trailing '\r' and spaces; '#' starts a comment in
 * dataset.txt only (class names may contain '#' or spaces).
 *
 * `open_dataset` reads the class files and every item's headers (PNG and .npy headers, no pixel
 * data) and throws `std::invalid_argument` naming the first bad file and what is wrong (missing,
 * wrong shape or dtype, a grid or size that differs from the split's first item, an unknown class
 * name …). `load_item` reads one item's data and checks its values (labels in range, tokens and
 * CLS finite, pixels in [0, 1], unit tokens when declared), again naming file and position.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/image_read.hpp"
#include "zss/io/npy.hpp"

namespace zss::data {

/// The format's name and version in dataset.txt.
inline constexpr std::string_view format_line = "zss-dataset 1";

/// How a file of an item is stored.
enum class file_kind : std::uint8_t { png, npy };

/// One split's items, as validated by `open_dataset` (headers only).
struct split_info {
  std::string name;                ///< the folder name ("train")
  std::filesystem::path dir;       ///< DIR/<name>
  std::vector<std::string> stems;  ///< items, sorted
  std::vector<file_kind> image_kind, label_kind;
  index_t height = 0, width = 0;   ///< H × W of every image and label map
  index_t grid_h = 0, grid_w = 0;  ///< h × w of every token grid
  index_t size() const noexcept { return stems.size(); }
  std::filesystem::path image_file(index_t i) const {
    return dir / "images" / (stems[i] + (image_kind[i] == file_kind::png ? ".png" : ".npy"));
  }
  std::filesystem::path label_file(index_t i) const {
    return dir / "labels" / (stems[i] + (label_kind[i] == file_kind::png ? ".png" : ".npy"));
  }
  std::filesystem::path tokens_file(index_t i) const {
    return dir / "tokens" / (stems[i] + ".npy");
  }
  std::filesystem::path cls_file(index_t i) const { return dir / "cls" / (stems[i] + ".npy"); }
};

/// A dataset folder: its classes and the splits that were opened.
struct dataset {
  std::filesystem::path root;
  std::vector<std::string> class_names;  ///< K
  std::vector<bool> seen;                ///< K: class k is seen in training
  index_t dim = 0;                       ///< D
  bool tokens_normalized = false;        ///< dataset.txt's declaration
  std::vector<split_info> splits;        ///< in the order asked for

  index_t classes() const noexcept { return class_names.size(); }
  /// The split named `name` (throws naming the opened splits when absent).
  const split_info& split(std::string_view name) const {
    for (const auto& s : splits)
      if (s.name == name) return s;
    std::string have;
    for (const auto& s : splits) have += (have.empty() ? "" : ", ") + s.name;
    throw std::invalid_argument("dataset '" + root.string() + "': split '" + std::string(name) +
                                "' was not opened (opened: " + have + ")");
  }
  /// The seen class ids, ascending.
  std::vector<std::int32_t> seen_ids() const {
    std::vector<std::int32_t> ids;
    for (index_t k = 0; k < seen.size(); ++k)
      if (seen[k]) ids.push_back(std::int32_t(k));
    return ids;
  }
  /// K × D text embeddings (read from disk on each call).
  template <real_scalar T>
  tensor<T, 2> text_embeddings() const {
    return load_npy_as<T, 2>(root / "text_embeddings.npy");
  }
};

/// One item's data (`load_item`).
template <real_scalar T>
struct item {
  tensor<float, 3> image;          ///< H × W × 3 RGB in [0, 1]
  tensor<std::int32_t, 2> labels;  ///< H × W class ids, −1 = ignored (all classes; the trainer
                                   ///< hides the unseen ones)
  tensor<T, 3> tokens;             ///< h × w × D
  tensor<T, 1> cls;                ///< D
};

namespace detail {

[[noreturn]] inline void dataset_fail(const std::filesystem::path& file, const std::string& what) {
  throw std::invalid_argument("dataset file '" + file.string() + "': " + what);
}

inline std::string strip(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

/// The non-empty lines of a text file, stripped; `comments` drops everything after '#'.
inline std::vector<std::pair<index_t, std::string>> read_lines(const std::filesystem::path& file,
                                                               bool comments) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) dataset_fail(file, "missing");
  std::ifstream in(file);
  if (!in) dataset_fail(file, "cannot be opened");
  std::vector<std::pair<index_t, std::string>> out;
  std::string line;
  index_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (comments) line = line.substr(0, line.find('#'));
    line = strip(line);
    if (!line.empty()) out.emplace_back(number, line);
  }
  return out;
}

inline std::string shape_text(const std::vector<index_t>& s) {
  return shape_string(s);
}

/// The header of an item's .npy file, or an `invalid_argument` naming the file.
inline npy_header npy_header_of(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) dataset_fail(file, "missing");
  try {
    return read_npy_header(file);
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(std::string("dataset: ") + e.what());
  }
}

/// The stems of `dir`'s files with extension `ext` (".png"/".npy"), and anything else found.
inline std::map<std::string, std::vector<std::string>> files_by_stem(
    const std::filesystem::path& dir) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden files (e.g. temporaries) are skipped
    out[e.path().stem().string()].push_back(e.path().extension().string());
  }
  return out;
}

inline void check_float(const std::filesystem::path& file, const npy_header& h, const char* what) {
  if (!npy_is_floating(h.dtype))
    dataset_fail(file, std::string(what) + " hold " + h.describe() + ", expected float32/float64");
}

/// Validates one split's folders and headers (see the file comment).
inline split_info open_split(const dataset& d, const std::string& name) {
  namespace fs = std::filesystem;
  split_info s;
  s.name = name;
  s.dir = d.root / name;
  std::error_code ec;
  if (!fs::is_directory(s.dir / "images", ec))
    dataset_fail(s.dir / "images", "missing (split '" + name + "' needs images/)");
  const char* folders[] = {"images", "labels", "tokens", "cls"};
  std::map<std::string, std::vector<std::string>> found[4];
  for (int f = 0; f < 4; ++f) {
    if (!fs::is_directory(s.dir / folders[f], ec))
      dataset_fail(s.dir / folders[f],
                   "missing (every split holds images/, labels/, tokens/, cls/)");
    found[f] = files_by_stem(s.dir / folders[f]);
  }
  for (const auto& [stem, exts] : found[0]) s.stems.push_back(stem);
  if (s.stems.empty()) dataset_fail(s.dir / "images", "holds no image");
  // Every file of labels/, tokens/, cls/ belongs to an image, with one allowed extension.
  for (int f = 1; f < 4; ++f)
    for (const auto& [stem, exts] : found[f])
      if (!found[0].count(stem))
        dataset_fail(s.dir / folders[f] / (stem + exts[0]), "has no image in images/");
  for (const auto& stem : s.stems) {
    for (int f = 0; f < 4; ++f) {
      const auto it = found[f].find(stem);
      const fs::path base = s.dir / folders[f] / stem;
      if (it == found[f].end())
        dataset_fail(base.string() + (f < 2 ? ".png|.npy" : ".npy"), "missing");
      if (it->second.size() != 1)
        dataset_fail(base.string() + ".*", "more than one file for item '" + stem + "'");
      const auto& ext = it->second[0];
      const bool png_ok = f < 2;
      if (ext != ".npy" && !(png_ok && ext == ".png"))
        dataset_fail(base.string() + ext, std::string("unexpected extension (") + folders[f] +
                                              "/ takes " + (png_ok ? ".png or .npy" : ".npy") +
                                              ")");
    }
    s.image_kind.push_back(found[0][stem][0] == ".png" ? file_kind::png : file_kind::npy);
    s.label_kind.push_back(found[1][stem][0] == ".png" ? file_kind::png : file_kind::npy);
  }
  for (index_t i = 0; i < s.size(); ++i) {
    // Image: H × W × 3.
    index_t H = 0, W = 0;
    const auto im = s.image_file(i);
    if (s.image_kind[i] == file_kind::png) {
      png_info pi;
      try {
        pi = read_png_info(im);
      } catch (const std::runtime_error& e) {
        throw std::invalid_argument(std::string("dataset: ") + e.what());
      }
      if (pi.bit_depth != 8) dataset_fail(im, "is a 16-bit PNG, expected an 8-bit picture");
      H = pi.height, W = pi.width;
    } else {
      const auto h = npy_header_of(im);
      check_float(im, h, "pixels");
      if (h.rank() != 3 || h.shape[2] != 3)
        dataset_fail(im, "holds " + h.describe() + ", expected H x W x 3 RGB in [0, 1]");
      H = h.shape[0], W = h.shape[1];
    }
    if (H == 0 || W == 0) dataset_fail(im, "is empty");
    if (i == 0) s.height = H, s.width = W;
    if (H != s.height || W != s.width)
      dataset_fail(im, "is " + std::to_string(H) + " x " + std::to_string(W) +
                           ", the split's first image " + s.image_file(0).string() + " is " +
                           std::to_string(s.height) + " x " + std::to_string(s.width));
    // Labels: H × W integers.
    const auto lf = s.label_file(i);
    index_t lh = 0, lw = 0;
    if (s.label_kind[i] == file_kind::png) {
      png_info pi;
      try {
        pi = read_png_info(lf);
      } catch (const std::runtime_error& e) {
        throw std::invalid_argument(std::string("dataset: ") + e.what());
      }
      if (pi.channels != 1)
        dataset_fail(lf, "has " + std::to_string(pi.channels) +
                             " channels, expected a grey PNG of class ids (a palette PNG decodes "
                             "as RGB: save the indices as grey or .npy)");
      lh = pi.height, lw = pi.width;
    } else {
      const auto h = npy_header_of(lf);
      if (npy_is_floating(h.dtype) || h.dtype == npy_dtype::bool8 || h.rank() != 2)
        dataset_fail(lf, "holds " + h.describe() + ", expected H x W integer class ids");
      lh = h.shape[0], lw = h.shape[1];
    }
    if (lh != H || lw != W)
      dataset_fail(lf, "is " + std::to_string(lh) + " x " + std::to_string(lw) + ", its image is " +
                           std::to_string(H) + " x " + std::to_string(W));
    // Tokens: h × w × D.
    const auto tf = s.tokens_file(i);
    const auto th = npy_header_of(tf);
    check_float(tf, th, "tokens");
    if (th.rank() != 3 || th.shape[2] != d.dim || th.shape[0] == 0 || th.shape[1] == 0)
      dataset_fail(tf, "holds " + th.describe() + ", expected h x w x " + std::to_string(d.dim) +
                           " tokens (D = the text embeddings' width)");
    if (i == 0) s.grid_h = th.shape[0], s.grid_w = th.shape[1];
    if (th.shape[0] != s.grid_h || th.shape[1] != s.grid_w)
      dataset_fail(tf, "has a " + std::to_string(th.shape[0]) + " x " +
                           std::to_string(th.shape[1]) + " grid, the split's first item " +
                           std::to_string(s.grid_h) + " x " + std::to_string(s.grid_w));
    // CLS: D.
    const auto cf = s.cls_file(i);
    const auto ch = npy_header_of(cf);
    check_float(cf, ch, "CLS values");
    if (ch.rank() != 1 || ch.shape[0] != d.dim)
      dataset_fail(cf, "holds " + ch.describe() + ", expected (" + std::to_string(d.dim) +
                           ",) (the CLS embedding, D = the text embeddings' width)");
  }
  return s;
}

}  // namespace detail

/**
 * Opens a dataset folder and validates its class files and the given splits' items (headers
 * only; see the file comment).
 * @param root   the dataset folder.
 * @param splits the split folders to open (e.g. {"train", "test"}).
 * @throws std::invalid_argument naming the first bad file and what is wrong.
 */
inline dataset open_dataset(const std::filesystem::path& root,
                            const std::vector<std::string>& splits) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw std::invalid_argument("dataset folder '" + root.string() + "' does not exist");
  dataset d;
  d.root = root;
  // dataset.txt
  {
    const auto file = root / "dataset.txt";
    const auto lines = detail::read_lines(file, true);
    bool format = false;
    for (const auto& [n, line] : lines) {
      const auto eq = line.find('=');
      if (eq == std::string::npos)
        detail::dataset_fail(file, "line " + std::to_string(n) + " is not 'key = value': " + line);
      const auto key = detail::strip(line.substr(0, eq)),
                 value = detail::strip(line.substr(eq + 1));
      if (key == "format") {
        if (value != format_line)
          detail::dataset_fail(file, "format is '" + value + "', this reader reads '" +
                                         std::string(format_line) + "'");
        format = true;
      } else if (key == "tokens_normalized") {
        if (value != "true" && value != "false")
          detail::dataset_fail(file,
                               "tokens_normalized must be true or false, got '" + value + "'");
        d.tokens_normalized = value == "true";
      } else {
        detail::dataset_fail(file, "line " + std::to_string(n) + ": unknown key '" + key + "'");
      }
    }
    if (!format)
      detail::dataset_fail(file, "has no 'format = " + std::string(format_line) + "' line");
  }
  // classes.txt
  {
    const auto file = root / "classes.txt";
    std::set<std::string> names;
    for (const auto& [n, line] : detail::read_lines(file, false)) {
      if (!names.insert(line).second)
        detail::dataset_fail(
            file, "line " + std::to_string(n) + ": class '" + line + "' is listed twice");
      d.class_names.push_back(line);
    }
    if (d.class_names.empty()) detail::dataset_fail(file, "lists no class");
    if (d.class_names.size() > 255)
      detail::dataset_fail(file, "lists " + std::to_string(d.class_names.size()) +
                                     " classes; at most 255 (255 is the ignore label)");
  }
  // text_embeddings.npy
  {
    const auto file = root / "text_embeddings.npy";
    const auto h = detail::npy_header_of(file);
    detail::check_float(file, h, "text embeddings");
    if (h.rank() != 2 || h.shape[0] != d.classes() || h.shape[1] == 0)
      detail::dataset_fail(file, "holds " + h.describe() + ", expected " +
                                     std::to_string(d.classes()) +
                                     " x D (one row per class of classes.txt)");
    d.dim = h.shape[1];
  }
  // unseen.txt
  {
    const auto file = root / "unseen.txt";
    d.seen.assign(d.classes(), true);
    for (const auto& [n, line] : detail::read_lines(file, false)) {
      const auto it = std::find(d.class_names.begin(), d.class_names.end(), line);
      if (it == d.class_names.end())
        detail::dataset_fail(
            file, "line " + std::to_string(n) + ": '" + line + "' is not a class of classes.txt");
      const auto k = index_t(it - d.class_names.begin());
      if (!d.seen[k])
        detail::dataset_fail(file,
                             "line " + std::to_string(n) + ": '" + line + "' is listed twice");
      d.seen[k] = false;
    }
    if (std::none_of(d.seen.begin(), d.seen.end(), [](bool b) { return b; }))
      detail::dataset_fail(file, "makes every class unseen; training needs a seen class");
  }
  for (const auto& name : splits) d.splits.push_back(detail::open_split(d, name));
  return d;
}

/**
 * Loads item `i` of `split` and checks its values (see the file comment).
 * @throws std::invalid_argument naming the file and the first bad value; std::runtime_error when
 *         a file changed since `open_dataset` and no longer reads.
 */
template <real_scalar T>
item<T> load_item(const dataset& d, const split_info& s, index_t i) {
  require(i < s.size(), "load_item: item " + std::to_string(i) + " of split '" + s.name + "' (" +
                            std::to_string(s.size()) + " items)");
  item<T> it;
  const auto im = s.image_file(i);
  if (s.image_kind[i] == file_kind::png) {
    const auto px = read_png_rgb(im);
    it.image = tensor<float, 3>::from_shape(px.shape());
    for (index_t j = 0; j < px.size(); ++j) it.image.data()[j] = float(px.data()[j]) / 255.0f;
  } else {
    it.image = load_npy_as<float, 3>(im);
    for (index_t j = 0; j < it.image.size(); ++j) {
      const float v = it.image.data()[j];
      if (!(v >= 0.0f && v <= 1.0f))
        detail::dataset_fail(im, "pixel value " + std::to_string(v) + " at element " +
                                     std::to_string(j) + " is outside [0, 1]");
    }
  }
  if (it.image.shape()[0] != s.height || it.image.shape()[1] != s.width)
    detail::dataset_fail(im, "changed size since the dataset was opened");
  const auto lf = s.label_file(i);
  it.labels =
      s.label_kind[i] == file_kind::png ? read_png_grey(lf) : load_npy_as<std::int32_t, 2>(lf);
  if (it.labels.shape()[0] != s.height || it.labels.shape()[1] != s.width)
    detail::dataset_fail(lf, "changed size since the dataset was opened");
  const auto K = std::int32_t(d.classes());
  for (index_t j = 0; j < it.labels.size(); ++j) {
    auto& l = it.labels.data()[j];
    if (l == 255 || l == -1) {
      l = -1;
    } else if (l < 0 || l >= K) {
      detail::dataset_fail(lf, "pixel (" + std::to_string(j / s.width) + ", " +
                                   std::to_string(j % s.width) + ") has label " +
                                   std::to_string(l) + ", outside [0, " + std::to_string(K) +
                                   ") (255 and -1 = ignored)");
    }
  }
  const auto tf = s.tokens_file(i);
  it.tokens = load_npy_as<T, 3>(tf);
  if (it.tokens.shape()[0] != s.grid_h || it.tokens.shape()[1] != s.grid_w ||
      it.tokens.shape()[2] != d.dim)
    detail::dataset_fail(tf, "changed shape since the dataset was opened");
  const index_t Q = s.grid_h * s.grid_w;
  for (index_t q = 0; q < Q; ++q) {
    const T* z = it.tokens.data() + q * d.dim;
    double n2 = 0;
    for (index_t c = 0; c < d.dim; ++c) {
      if (!std::isfinite(z[c]))
        detail::dataset_fail(tf, "token (" + std::to_string(q / s.grid_w) + ", " +
                                     std::to_string(q % s.grid_w) + ") is not finite");
      n2 += double(z[c]) * double(z[c]);
    }
    if (d.tokens_normalized && std::abs(std::sqrt(n2) - 1.0) > 1e-4)
      detail::dataset_fail(tf, "token (" + std::to_string(q / s.grid_w) + ", " +
                                   std::to_string(q % s.grid_w) + ") has norm " +
                                   std::to_string(std::sqrt(n2)) +
                                   ", but dataset.txt declares tokens_normalized = true");
  }
  const auto cf = s.cls_file(i);
  it.cls = load_npy_as<T, 1>(cf);
  if (it.cls.size() != d.dim)
    detail::dataset_fail(cf, "changed shape since the dataset was opened");
  for (index_t c = 0; c < d.dim; ++c)
    if (!std::isfinite(it.cls(c)))
      detail::dataset_fail(cf, "value " + std::to_string(c) + " is not finite");
  return it;
}

/**
 * Writes a dataset's class files (dataset.txt, classes.txt, text_embeddings.npy, unseen.txt) into
 * `root` (created if needed), each atomically.
 * @param text  K × D text embeddings; `names` K class names; `unseen` K flags.
 * @throws std::invalid_argument on mismatched counts, an empty, duplicate or multi-line name.
 */
template <real_scalar T>
void write_dataset_info(const std::filesystem::path& root, const std::vector<std::string>& names,
                        const tensor<T, 2>& text, const std::vector<bool>& unseen,
                        bool tokens_normalized) {
  check_extent("write_dataset_info", "class names", names.size(), "rows of the text embeddings",
               text.shape()[0]);
  check_extent("write_dataset_info", "unseen flags", unseen.size(), "class names", names.size());
  std::set<std::string> distinct;
  for (const auto& n : names)
    require(!n.empty() && n == detail::strip(n) && n.find('\n') == std::string::npos &&
                distinct.insert(n).second,
            "write_dataset_info: class name '" + n +
                "' is empty, has surrounding blanks or a newline, or is repeated");
  std::filesystem::create_directories(root);
  write_file_atomically(root / "dataset.txt", [&](std::ostream& o) {
    o << "format = " << format_line << "\n"
      << "tokens_normalized = " << (tokens_normalized ? "true" : "false") << "\n";
  });
  write_file_atomically(root / "classes.txt", [&](std::ostream& o) {
    for (const auto& n : names) o << n << "\n";
  });
  save_npy(root / "text_embeddings.npy", text);
  write_file_atomically(root / "unseen.txt", [&](std::ostream& o) {
    for (index_t k = 0; k < names.size(); ++k)
      if (unseen[k]) o << names[k] << "\n";
  });
}

/**
 * Writes one item into `root/<split>/{images,labels,tokens,cls}/<stem>.*` (folders created),
 * each file atomically. Labels < 0 are written as 255 in a PNG and as −1 in a .npy.
 * @param image   H × W × 3 in [0, 1]; `image_kind` png (8-bit, rounded) or npy (float32, exact).
 * @param labels  H × W class ids or −1.
 * @param tokens  h × w × D; @param cls D.
 */
template <real_scalar T>
void write_item(const std::filesystem::path& root, const std::string& split,
                const std::string& stem, const tensor<float, 3>& image,
                const tensor<std::int32_t, 2>& labels, const tensor<T, 3>& tokens,
                const tensor<T, 1>& cls, file_kind image_kind, file_kind label_kind) {
  namespace fs = std::filesystem;
  const index_t H = image.shape()[0], W = image.shape()[1];
  require(image.shape()[2] == 3,
          "write_item: image must be H x W x 3, got " + shape_string(image.shape()));
  check_shape("write_item", "labels", labels, {H, W});
  check_extent("write_item", "CLS width", cls.size(), "token width", tokens.shape()[2]);
  const fs::path dir = root / split;
  for (const char* f : {"images", "labels", "tokens", "cls"}) fs::create_directories(dir / f);
  if (image_kind == file_kind::png) {
    tensor<std::uint8_t, 3> px = tensor<std::uint8_t, 3>::from_shape({H, W, 3});
    for (index_t j = 0; j < px.size(); ++j) {
      const float v = image.data()[j];
      require(v >= 0.0f && v <= 1.0f, "write_item: pixel value outside [0, 1]");
      px.data()[j] = std::uint8_t(std::lround(255.0f * v));
    }
    write_png(dir / "images" / (stem + ".png"), px);
  } else {
    save_npy(dir / "images" / (stem + ".npy"), image);
  }
  if (label_kind == file_kind::png) {
    tensor<std::uint8_t, 2> px = tensor<std::uint8_t, 2>::from_shape({H, W});
    for (index_t j = 0; j < px.size(); ++j) {
      const auto l = labels.data()[j];
      require(l < 255, "write_item: label " + std::to_string(l) + " does not fit an 8-bit PNG");
      px.data()[j] = l < 0 ? 255 : std::uint8_t(l);
    }
    write_png(dir / "labels" / (stem + ".png"), px);
  } else {
    tensor<std::int32_t, 2> l = labels;
    for (auto& v : l) v = v < 0 ? -1 : v;
    save_npy(dir / "labels" / (stem + ".npy"), l);
  }
  save_npy(dir / "tokens" / (stem + ".npy"), tokens);
  save_npy(dir / "cls" / (stem + ".npy"), cls);
}

}  // namespace zss::data
