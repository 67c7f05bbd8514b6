// SPDX-License-Identifier: Apache-2.0
#pragma once
// The GZSS metrics (DESIGN.md §2.5), PNG pictures of label maps, and the toy world's scenes with
// the simulated teacher's tokens (DESIGN.md §4) for the `zss` Python module. Included once, by
// zss_module.cpp (the module's only translation unit).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "zss/core/parallel.hpp"
#include "zss/eval/metrics.hpp"
#include "zss/io/image_io.hpp"
#include "zss/toy/classes.hpp"
#include "zss/toy/scenes.hpp"
#include "zss/toy/teacher.hpp"
#include "zss/toy/text_embeddings.hpp"

namespace zss::python {

namespace eval_toy_detail {

/// C seen flags from any array-like of booleans (or 0/1).
inline std::unique_ptr<bool[]> seen_flags(py::handle h, index_t classes, const std::string& where) {
  auto a = carray<std::uint8_t>::ensure(
      py::module_::import("numpy").attr("asarray")(h, "dtype"_a = "bool"));
  if (!a || a.ndim() != 1 || static_cast<index_t>(a.size()) != classes)
    throw py::value_error(where + ": seen must be " + std::to_string(classes) +
                          " flags (one per class)");
  std::unique_ptr<bool[]> out(new bool[classes]);
  for (index_t k = 0; k < classes; ++k) out[k] = a.data()[k] != 0;
  return out;
}

inline eval::segmentation_metrics metrics_of(const eval::confusion_matrix& cm, array_like seen,
                                             bool include_background) {
  const auto flags = seen_flags(seen, cm.classes(), "compute_metrics");
  return eval::compute_metrics(cm, std::span<const bool>(flags.get(), cm.classes()),
                               include_background);
}

inline void add_pixels(eval::confusion_matrix& cm, array_like truth_h, array_like pred_h) {
  const std::string where = "ConfusionMatrix.add";
  auto truth = label_array(truth_h, where, "truth");
  auto pred = label_array(pred_h, where, "pred");
  if (shape_vector(truth) != shape_vector(pred))
    throw py::value_error(where + ": truth has shape " + shape_of(truth) + ", pred has " +
                          shape_of(pred));
  const auto n = static_cast<index_t>(truth.size());
  py::gil_scoped_release nogil;
  cm.add(truth.data(), pred.data(), n);
}

}  // namespace eval_toy_detail

inline void bind_eval(py::module_& m) {
  using namespace eval_toy_detail;
  py::class_<eval::segmentation_metrics>(m, "SegmentationMetrics",
                                         "GZSS metrics (DESIGN.md §2.5), IoU values in [0, 1].")
      .def_property_readonly(
          "per_class_iou",
          [](const eval::segmentation_metrics& s) {
            return py::array_t<double>(static_cast<py::ssize_t>(s.per_class_iou.size()),
                                       s.per_class_iou.data());
          },
          "(C,) float64 IoU per class, NaN where the class is absent from truth and prediction")
      .def_readonly("miou_seen", &eval::segmentation_metrics::miou_seen,
                    "mIoU(S): mean IoU over the seen classes present")
      .def_readonly("miou_unseen", &eval::segmentation_metrics::miou_unseen,
                    "mIoU(U): mean IoU over the unseen classes present")
      .def_readonly("hiou", &eval::segmentation_metrics::hiou,
                    "hIoU = 2 S U / (S + U) (0 when both are 0)")
      .def_readonly("miou", &eval::segmentation_metrics::miou, "mean IoU over all classes present")
      .def_readonly("pixel_acc", &eval::segmentation_metrics::pixel_acc, "correct / counted pixels")
      .def("__repr__", [](const eval::segmentation_metrics& s) {
        auto f = [](double v) { return py::repr(py::float_(v)).cast<std::string>(); };
        return "SegmentationMetrics(miou_seen=" + f(s.miou_seen) +
               ", miou_unseen=" + f(s.miou_unseen) + ", hiou=" + f(s.hiou) +
               ", pixel_acc=" + f(s.pixel_acc) + ")";
      });

  py::class_<eval::confusion_matrix>(
      m, "ConfusionMatrix",
      "C x C pixel counts (rows = ground truth, columns = prediction); truth -1 is ignored.")
      .def(py::init([](std::int64_t classes) {
             return eval::confusion_matrix(count_arg("ConfusionMatrix", "classes", classes));
           }),
           "classes"_a)
      .def_property_readonly("classes", &eval::confusion_matrix::classes)
      .def("add", &add_pixels, "truth"_a, "pred"_a,
           "Adds pixels: truth and pred integer arrays of one shape, labels in [0, C) (truth may "
           "be -1). The GIL is released.")
      .def("merge", &eval::confusion_matrix::merge, "other"_a,
           "Adds another matrix of the same size.")
      .def_property_readonly(
          "matrix",
          [](const eval::confusion_matrix& cm) {
            const auto c = static_cast<py::ssize_t>(cm.classes());
            py::array_t<std::uint64_t> out({c, c});
            for (py::ssize_t i = 0; i < c; ++i)
              for (py::ssize_t j = 0; j < c; ++j) out.mutable_at(i, j) = cm(index_t(i), index_t(j));
            return out;
          },
          "(C, C) uint64 counts (a copy)")
      .def("metrics", &metrics_of, "seen"_a, "include_background"_a = true,
           "compute_metrics(self, seen, include_background).");

  m.def("compute_metrics", &metrics_of, "cm"_a, "seen"_a, "include_background"_a = true,
        R"doc(GZSS metrics of a confusion matrix (DESIGN.md §2.5).

Args:
    cm: a ConfusionMatrix.
    seen: C flags, True for seen classes.
    include_background: whether class 0 counts in mIoU(S) and mIoU.

Returns:
    SegmentationMetrics (per_class_iou, miou_seen, miou_unseen, hiou, miou, pixel_acc).)doc");
  m.def(
      "segmentation_metrics",
      [](array_like truth, array_like pred, array_like seen, bool include_background) {
        const auto classes = static_cast<index_t>(py::len(seen));
        eval::confusion_matrix cm(classes);
        add_pixels(cm, truth, pred);
        return metrics_of(cm, seen, include_background);
      },
      "truth"_a, "pred"_a, "seen"_a, "include_background"_a = true,
      R"doc(GZSS metrics of one set of label maps: truth and pred integer arrays of one shape (any
number of images), C = len(seen) classes; truth -1 is ignored.)doc");

  m.def(
      "colorize_labels",
      [](array_like labels_h) {
        auto labels = label_array(labels_h, "colorize_labels", "labels");
        auto shape = shape_vector(labels);
        shape.push_back(3);
        py::array_t<std::uint8_t> out(shape);
        std::uint8_t* o = out.mutable_data();
        const std::int32_t* l = labels.data();
        const auto n = labels.size();
        {
          py::gil_scoped_release nogil;
          for (py::ssize_t i = 0; i < n; ++i) {
            const rgb c = label_colour(l[i]);
            o[3 * i] = c[0], o[3 * i + 1] = c[1], o[3 * i + 2] = c[2];
          }
        }
        return out;
      },
      "labels"_a,
      "The palette picture of integer labels (any shape): uint8 (..., 3), the PASCAL VOC colour "
      "map of label + 1; negative (ignored) labels are black.");
  m.def(
      "write_png",
      [](const std::string& path, array_like pixels_h) {
        auto a = as_array(pixels_h);
        if (!a || a.dtype().num() != py::dtype::of<std::uint8_t>().num())
          throw py::value_error("write_png: pixels must be a uint8 array (H, W) or (H, W, C)");
        check_ndim(a, {2, 3}, "write_png", "pixels");
        auto p = carray<std::uint8_t>::ensure(a);
        const auto h = static_cast<index_t>(p.shape(0)), w = static_cast<index_t>(p.shape(1)),
                   c = p.ndim() == 3 ? static_cast<index_t>(p.shape(2)) : 1;
        py::gil_scoped_release nogil;
        const auto bytes = encode_png(p.data(), h, w, c);
        write_file_atomically(path, [&](std::ostream& out) {
          out.write(reinterpret_cast<const char*>(bytes.data()),
                    static_cast<std::streamsize>(bytes.size()));
        });
      },
      "path"_a, "pixels"_a,
      "Writes a uint8 (H, W) grey or (H, W, C) image (C in 1..4) as PNG, atomically (Debian's "
      "stb; nothing is left behind on failure).");
}

namespace eval_toy_detail {

template <real_scalar T>
py::dict toy_scenes(index_t count, std::uint64_t first, const toy::scene_options& sp,
                    const toy::text_options& tp, const toy::teacher_options& te, int threads) {
  sp.validate();
  te.validate();
  const auto n = static_cast<py::ssize_t>(count), H = static_cast<py::ssize_t>(sp.height),
             W = static_cast<py::ssize_t>(sp.width), D = static_cast<py::ssize_t>(tp.dim);
  if (sp.height % te.patch || sp.width % te.patch)
    throw py::value_error("toy.scenes: the image " + std::to_string(H) + " x " + std::to_string(W) +
                          " is not a multiple of the patch size " + std::to_string(te.patch));
  const auto h = H / static_cast<py::ssize_t>(te.patch), w = W / static_cast<py::ssize_t>(te.patch);
  py::array_t<float> images({n, H, W, py::ssize_t(3)});
  py::array_t<std::int32_t> labels({n, H, W}), train_labels({n, H, W});
  py::array_t<T> tokens({n, h, w, D}), cls({n, D}), text({py::ssize_t(toy::class_count), D});
  float* im = images.mutable_data();
  std::int32_t *lab = labels.mutable_data(), *tl = train_labels.mutable_data();
  T *tok = tokens.mutable_data(), *cl = cls.mutable_data(), *tx = text.mutable_data();
  {
    py::gil_scoped_release nogil;
    const auto t = toy::make_text_embeddings<T>(tp);
    std::copy(t.begin(), t.end(), tx);
    const toy::teacher<T> teach(t, te);
    parallel_for(count, threads, [&](index_t i, int) {
      const auto s = toy::make_scene(sp, tp.seed, first + i);
      const auto o = teach(s, first + i);
      std::copy(s.image.begin(), s.image.end(), im + i * H * W * 3);
      std::copy(s.labels.begin(), s.labels.end(), lab + i * H * W);
      std::copy(s.train_labels.begin(), s.train_labels.end(), tl + i * H * W);
      std::copy(o.tokens.begin(), o.tokens.end(), tok + i * h * w * D);
      std::copy(o.cls.begin(), o.cls.end(), cl + i * D);
    });
  }
  py::array_t<bool> seen(py::ssize_t(toy::class_count));
  py::list names;
  for (index_t k = 0; k < toy::class_count; ++k) {
    seen.mutable_data()[k] = sp.split.is_seen(std::int32_t(k));
    names.append(toy::class_name(std::int32_t(k)));
  }
  py::dict d;
  d["images"] = images;
  d["labels"] = labels;
  d["train_labels"] = train_labels;
  d["tokens"] = tokens;
  d["cls"] = cls;
  d["text"] = text;
  d["seen"] = seen;
  d["class_names"] = names;
  return d;
}

}  // namespace eval_toy_detail

inline void bind_toy(py::module_& m) {
  auto toy = m.def_submodule(
      "toy",
      "The toy world of DESIGN.md §4: seeded scenes of 21 colour x texture classes and a "
      "simulated CLIP teacher (dense tokens, CLS, text embeddings). Stands in for CLIP when none "
      "is installed.");
  toy.attr("class_count") = toy::class_count;
  toy.attr("test_index_base") = toy::test_index_base;
  toy.def(
      "scenes",
      [](std::int64_t count, std::uint64_t first, std::uint64_t seed, std::int64_t dim,
         std::int64_t height, std::int64_t width, std::int64_t min_objects,
         std::int64_t max_objects, std::int64_t clutter_objects, std::int64_t patch,
         double dense_noise, double cls_noise, double gap, double global_bias, double area_power,
         py::object dtype, int threads) {
        const std::string where = "toy.scenes";
        toy::scene_options sp;
        sp.height = count_arg(where, "height", height);
        sp.width = count_arg(where, "width", width);
        sp.min_objects = count_arg(where, "min_objects", min_objects);
        sp.max_objects = count_arg(where, "max_objects", max_objects);
        sp.clutter_objects = count_arg(where, "clutter_objects", clutter_objects);
        toy::text_options tp;
        tp.dim = count_arg(where, "dim", dim);
        tp.seed = seed;
        toy::teacher_options te;
        te.patch = count_arg(where, "patch", patch);
        te.dense_noise = dense_noise;
        te.cls_noise = cls_noise;
        te.gap = gap;
        te.global_bias = global_bias;
        te.area_power = area_power;
        te.seed = seed;
        const auto n = count_arg(where, "count", count);
        const py::dtype dt = py::dtype::from_args(dtype);
        if (dt.num() == py::dtype::of<float>().num())
          return eval_toy_detail::toy_scenes<float>(n, first, sp, tp, te, threads);
        if (dt.num() == py::dtype::of<double>().num())
          return eval_toy_detail::toy_scenes<double>(n, first, sp, tp, te, threads);
        throw py::value_error(where + ": dtype must be float32 or float64");
      },
      R"doc(Scenes first .. first+count-1 of the toy world with seed `seed`, and the simulated teacher's
view of each (scene i is a pure function of (seed, i); test scenes start at test_index_base).

Returns:
    dict: images (n, H, W, 3) float32 RGB in [0, 1]; labels (n, H, W) int32 all classes (-1
    clutter); train_labels (n, H, W) int32 with unseen classes -1; tokens (n, H/patch, W/patch,
    dim) unit rows; cls (n, dim); text (21, dim) class embeddings; seen (21,) bool; class_names.
    tokens, cls and text have `dtype`.)doc",
      "count"_a, py::kw_only(), "first"_a = 0, "seed"_a = 0, "dim"_a = 64, "height"_a = 64,
      "width"_a = 64, "min_objects"_a = 1, "max_objects"_a = 3, "clutter_objects"_a = 0,
      "patch"_a = 4, "dense_noise"_a = 0.5, "cls_noise"_a = 0.2, "gap"_a = 1.5,
      "global_bias"_a = 0.3, "area_power"_a = 0.5, "dtype"_a = py::dtype::of<float>(),
      "threads"_a = 0);
}

}  // namespace zss::python
