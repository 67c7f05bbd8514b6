// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the checkpoint reader (io/checkpoint.hpp) and what the trainer does with a
// checkpoint's sections (configuration text, CLS bank; train/trainer.hpp), on arbitrary bytes.
// Each input is tried as it is and with its checksum recomputed (so that mutations reach the
// parser behind the checksum). Every input must load or end in std::invalid_argument, leaving
// the trainer unchanged; anything else is a finding. fuzz/README.md runs it.
//
// ZSS_FUZZ_WRITE_SEED=<file> writes a valid checkpoint of this target's trainer to <file> and
// exits (how fuzz/corpus/checkpoint/ was made); ZSS_FUZZ_CHECK_SEED=<file> exits 0 when <file>
// loads into it, 1 otherwise (ctest's fuzz_seed_checkpoint: the seed follows the trainer's
// defaults).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "zss/train/trainer.hpp"

namespace {

using zss::index_t;

zss::train::trainer_options tiny_config() {
  zss::train::trainer_options c;
  c.encoder.widths = {2, 3};
  c.encoder.strides = {2, 1};
  c.encoder.embed_dim = 4;
  c.plm.hidden = 4;
  c.bank_size = 3;
  c.batch = 2;
  c.schedule.total_steps = 10;
  c.schedule.warmup_steps = 1;
  c.threads = 1;
  return c;
}

zss::train::trainer<float>& trainer() {
  static zss::tensor<float, 2> text = [] {
    zss::tensor<float, 2> t = zss::tensor<float, 2>::from_shape({3, 4});
    for (index_t i = 0; i < t.size(); ++i) t.data()[i] = float(i % 5) - 2.0f;
    return t;
  }();
  static zss::train::trainer<float> tr(tiny_config(), text);
  return tr;
}

void try_load(std::span<const std::uint8_t> bytes) {
  auto& tr = trainer();
  const float first = tr.parameters().values()[0];
  try {
    (void)tr.load(bytes, "fuzz.zss");
  } catch (const std::invalid_argument&) {
    if (tr.parameters().values()[0] != first) std::abort();  // a failed load changed the trainer
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("ZSS_FUZZ_WRITE_SEED")) {
    trainer().save(out);
    std::exit(0);
  }
  if (const char* seed = std::getenv("ZSS_FUZZ_CHECK_SEED")) {
    // The valid seed must load into this target's trainer: a seed written with other trainer
    // defaults stops at the configuration check, and the fuzzer never reaches what follows.
    try {
      (void)trainer().load(seed);
      std::exit(0);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr,
                   "fuzz_checkpoint: the seed %s does not load: %s\n"
                   "rewrite it with ZSS_FUZZ_WRITE_SEED (fuzz/README.md)\n",
                   seed, e.what());
      std::exit(1);
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try_load({data, size});
  if (size >= 16) {  // the same bytes with a valid checksum
    std::vector<std::uint8_t> fixed(data, data + size);
    const std::uint64_t sum = zss::detail::fnv1a64(fixed.data(), size - 8);
    std::memcpy(fixed.data() + size - 8, &sum, 8);
    try_load(fixed);
  }
  return 0;
}
