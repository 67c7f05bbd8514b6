// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/zss.hpp
 * Umbrella header: everything in zss except zss/dist/'s MPI headers (environment, collectives,
 * collective: include them and link MPI::MPI_CXX to use MPI). Prefer the individual headers in
 * library code.
 */
#include "zss/version.hpp"

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/random.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/image_read.hpp"
#include "zss/io/npy.hpp"

#include "zss/nn/attention.hpp"
#include "zss/nn/conv2d.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/nn/group_norm.hpp"
#include "zss/nn/im2col.hpp"
#include "zss/nn/init.hpp"
#include "zss/nn/layer_norm.hpp"
#include "zss/nn/linear.hpp"
#include "zss/nn/mlp.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/relu.hpp"
#include "zss/nn/upsample.hpp"

#include "zss/loss/bce.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/loss/focal_dice.hpp"
#include "zss/loss/glm.hpp"
#include "zss/loss/info_nce.hpp"
#include "zss/nn/softmax.hpp"

#include "zss/cluster/centroid_panel.hpp"
#include "zss/cluster/clustering.hpp"
#include "zss/cluster/empty_cluster.hpp"
#include "zss/cluster/kmeans.hpp"
#include "zss/cluster/kmeans_options.hpp"
#include "zss/cluster/kmeanspp_init.hpp"
#include "zss/cluster/lloyd_step.hpp"
#include "zss/cluster/mask_fusion.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/cluster/window_seeds.hpp"

#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/region_pool.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"
#include "zss/plm/token_labels.hpp"

#include "zss/io/checkpoint.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/clip.hpp"
#include "zss/optim/schedule.hpp"
#include "zss/optim/sgd.hpp"

#include "zss/eval/metrics.hpp"
#include "zss/eval/zero_shot.hpp"

#include "zss/toy/classes.hpp"
#include "zss/toy/dataset.hpp"
#include "zss/toy/scenes.hpp"
#include "zss/toy/teacher.hpp"
#include "zss/toy/text_embeddings.hpp"

#include "zss/data/dataset.hpp"
#include "zss/dist/shard.hpp"
#include "zss/eval/predict.hpp"
#include "zss/loss/cls_bank.hpp"
#include "zss/plm/targets.hpp"
#include "zss/toy/export.hpp"
#include "zss/train/collective.hpp"
#include "zss/train/config.hpp"
#include "zss/train/dataset.hpp"
#include "zss/train/toy.hpp"
#include "zss/train/trainer.hpp"
