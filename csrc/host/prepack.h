// Host layer: a model's weight matrices packed once, at load, into the panel
// layout of the kernel table that will run them (the table's pack_w), so no
// GEMM call repacks W. Owns the packed copies; the model points at them
// through ofa_model(_int8)::prepacked. Python-free, allocates (host only).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine_host.h"

namespace ofa_host {

template <class S>
class Prepacked;

// The packed copies of one fp32 model, for one kernel table.
template <>
class Prepacked<Fp32> {
 public:
  // Packs every weight matrix of `m` for `k` and points m->prepacked at them.
  // A table without pack_w leaves the model as it is.
  void pack(ofa_model* m, std::vector<ofa_layer_weights>&, const ofa_kernels* k) {
    m->prepacked = nullptr;
    if (!k->pack_w || !k->packed_floats) return;
    const ofa_config& c = m->config;
    const int32_t d = c.d_model, f = c.d_ff, flat = (int32_t)ofa_head_depth(&c);
    packed_.pack_w = k->pack_w;
    layers_.assign(c.n_layers, ofa_prepacked_layer{});
    for (int32_t i = 0; i < c.n_layers; ++i) {
      const ofa_layer_weights& l = m->layers[i];
      layers_[i].attn_qkv_w = one(k, l.attn_qkv_w, 3 * d, d);
      layers_[i].attn_out_w = one(k, l.attn_out_w, d, d);
      layers_[i].ff_in_w = one(k, l.ff_in_w, f, d);
      layers_[i].ff_out_w = one(k, l.ff_out_w, d, f);
    }
    packed_.layers = layers_.data();
    packed_.in_w = one(k, m->in_w, d, ofa_token_width(&c));
    if (c.head_rank == 0) {
      packed_.head_w = one(k, m->head_w, ofa_head_outputs(&c), flat);
    } else {
      packed_.head_a = one(k, m->head_a, c.head_rank, flat);
      packed_.head_b_lr = one(k, m->head_b_lr, c.horizon, c.head_rank);
    }
    if (c.linear_path) packed_.linear_w = one(k, m->linear_w, c.horizon, c.seq_len);
    m->prepacked = &packed_;
  }
  size_t bytes() const {
    size_t total = 0;
    for (const AlignedBuffer& b : buffers_) total += b.bytes;
    return total;
  }

 private:
  const float* one(const ofa_kernels* k, const float* w, int32_t n, int32_t kdim) {
    if (!w) return nullptr;
    buffers_.emplace_back(k->packed_floats(n, kdim) * sizeof(float));
    float* dst = reinterpret_cast<float*>(buffers_.back().data);
    k->pack_w(w, kdim, n, kdim, dst);
    return dst;
  }
  ofa_prepacked packed_{};
  std::vector<ofa_prepacked_layer> layers_;
  std::vector<AlignedBuffer> buffers_;
};

// The packed copies of one int8 model, for one kernel table: each linear's
// w_packed, and model.packed_by naming the packer.
template <>
class Prepacked<Int8> {
 public:
  void pack(ofa_model_int8* m, std::vector<ofa_layer_int8>& layers, const ofa_kernels_int8* k) {
    m->packed_by = nullptr;
    if (!k->pack_w || !k->packed_bytes) return;
    const ofa_config& c = m->config;
    const int32_t d = c.d_model, f = c.d_ff, flat = (int32_t)ofa_head_depth(&c);
    for (ofa_layer_int8& l : layers) {
      one(k, l.qkv, 3 * d, d);
      one(k, l.attn_out, d, d);
      one(k, l.ff_in, f, d);
      one(k, l.ff_out, d, f);
    }
    one(k, m->in_layer, d, ofa_token_width(&c));
    if (c.head_rank == 0) {
      one(k, m->head, ofa_head_outputs(&c), flat);
    } else {
      one(k, m->head_a, c.head_rank, flat);
      one(k, m->head_b, c.horizon, c.head_rank);
    }
    if (c.linear_path) one(k, m->linear, c.horizon, c.seq_len);
    m->packed_by = k->pack_w;
  }
  size_t bytes() const {
    size_t total = 0;
    for (const AlignedBuffer& b : buffers_) total += b.bytes;
    return total;
  }

 private:
  void one(const ofa_kernels_int8* k, ofa_linear_int8& l, int32_t n, int32_t kdim) {
    l.w_packed = nullptr;
    if (!l.w) return;
    buffers_.emplace_back(k->packed_bytes(n, kdim));
    int8_t* dst = reinterpret_cast<int8_t*>(buffers_.back().data);
    k->pack_w(l.w, kdim, n, kdim, dst);
    l.w_packed = dst;
  }
  std::vector<AlignedBuffer> buffers_;
};

}  // namespace ofa_host
