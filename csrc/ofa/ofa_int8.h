/* ofa_int8.h - public C API of the int8 (post-training quantised) engine.
 *
 * Same freestanding rules as ofa.h: no heap, no OS, weights borrowed, scratch
 * from one caller arena of exactly ofa_arena_bytes_int8() bytes.
 *
 * Scheme (TFLite int8 spec where it applies):
 *  - GEMM weights int8, symmetric per output channel; activations int8 per
 *    tensor with a zero point; int32 accumulators; the activation zero point
 *    is folded into each GEMM's int32 bias at export.
 *  - int32 -> int32/int8 requantisation by a Q31 multiplier and a power-of-two
 *    shift (gemmlowp SaturatingRoundingDoublingHighMul + RoundingDivideByPOT).
 *  - The residual stream stays int32 on a fine grid (mixed precision); layer
 *    norm (integer sqrt), softmax (I-BERT i-exp) and GELU (256-entry table)
 *    are integer-only, so every step but the float input normalisation and
 *    the final dequantisation (both +,-,*,/,sqrt in a fixed order) is exact
 *    integer arithmetic: the same bits on any conforming target.
 */
#ifndef OFA_OFA_INT8_H
#define OFA_OFA_INT8_H

#include <stddef.h>
#include <stdint.h>

#include "ofa.h"
#include "ofa_kernels_int8.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Requantisation table of `count` channels (1 = one set for the whole
 * tensor): value -> MultiplyByQuantizedMultiplier(value, mult, shift) + zp.
 * Stored as one int32 tensor (3, count): rows mult, shift, zp. */
typedef struct ofa_requant {
  const int32_t* table;
  int32_t count;
} ofa_requant;

/* Layer norm over an int32 row: mean and variance in int64, integer sqrt,
 * then out = requant(k, per-channel gamma multiplier) + beta (the zp row). */
typedef struct ofa_layer_norm_int8 {
  const int64_t* eps; /* (1) eps in units of the squared centred input */
  ofa_requant out;    /* (d) int32 output grid */
  ofa_requant narrow; /* (1) int32 output grid -> int8 for the next GEMM */
} ofa_layer_norm_int8;

typedef struct ofa_linear_int8 {
  const int8_t* w;   /* (out, in) symmetric per output channel */
  const int32_t* b;  /* (out) bias minus input zp * row sum of w */
  ofa_requant out;   /* (out) accumulator -> next grid */
  /* w in the panel layout of ofa_model_int8.packed_by, written once at load
   * by a host engine; NULL (firmware): each GEMM packs w itself. */
  const int8_t* w_packed;
} ofa_linear_int8;

typedef struct ofa_layer_int8 {
  ofa_linear_int8 qkv;       /* out: int8 q|k|v, symmetric (zp 0) */
  ofa_requant scores;        /* (1) q.k accumulator -> Q10 logits */
  ofa_requant context;       /* (1) p.v accumulator -> int8 */
  ofa_linear_int8 attn_out;  /* out: added into the residual grid */
  ofa_layer_norm_int8 ln1, ln2;
  ofa_linear_int8 ff_in;     /* out: int8 GELU input */
  const int8_t* gelu_lut;    /* (256) int8 GELU input -> int8 output */
  ofa_linear_int8 ff_out;    /* out: added into the residual grid */
} ofa_layer_int8;

typedef struct ofa_model_int8 {
  ofa_config config;
  const float* patch_inv_scale; /* (1) normalised patch value -> int8 */
  ofa_linear_int8 in_layer;     /* out: residual grid */
  const int32_t* pos;           /* (N, d) positions on the residual grid */
  ofa_layer_norm_int8 emb_ln;   /* BERT only */
  const ofa_layer_int8* layers;
  ofa_layer_norm_int8 final_ln; /* GPT-2 only */
  ofa_linear_int8 head;         /* dense head, head_rank == 0 (out unused); classify: (K, C*N*d) */
  ofa_linear_int8 head_a;       /* head_rank > 0: out -> int8 */
  ofa_linear_int8 head_b;       /* head_rank > 0 (out unused) */
  const float* head_out_scale;  /* (H) final accumulator -> normalised forecast; classify: (K) -> logit */
  const float* scaler_mean;     /* (C) */
  const float* scaler_std;      /* (C) */
  /* Linear path (config.linear_path == 1): int8 W (H, L) over the window's
   * quantised normalised values (the patch grid), no accumulator bias; the
   * normalised forecast is head acc * head_out_scale + linear acc *
   * linear_out_scale, then * sd + mu + linear_bias. */
  ofa_linear_int8 linear;         /* b and out unused */
  const float* linear_out_scale;  /* (H) */
  const float* linear_bias;       /* (H) */
  /* The pack_w that wrote every w_packed above: they are used only with a
   * kernel table whose pack_w is this function. NULL: none are packed. */
  void (*packed_by)(const int8_t* w, int32_t ldw, int32_t n, int32_t k, int8_t* dst);
} ofa_model_int8;

/* Checks config, tensors present, and every multiplier / shift / scale in
 * range: OFA_ERR_BAD_QUANT names a bad quantisation parameter. */
ofa_status ofa_validate_model_int8(const ofa_model_int8* model);

/* The arena a build's int8 kernels plan with. HOST: the SIMD GEMMs' packing
 * panel (OFA_GEMM_S8_NR columns of W) and one head's whole score matrix.
 * MCU: the portable and Cortex-M DSP GEMMs' 4 bytes per depth, and the scores
 * of OFA_MCU_SCORE_ROWS queries at a time. A Cortex-M build
 * (__ARM_ARCH_PROFILE 'M') plans with MCU, every other build with HOST; the
 * bits are the same under both. */
typedef enum ofa_arena_rules { OFA_ARENA_HOST = 0, OFA_ARENA_MCU = 1 } ofa_arena_rules;
#define OFA_MCU_SCORE_ROWS 8
#if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#define OFA_BUILD_ARENA_RULES OFA_ARENA_MCU
#else
#define OFA_BUILD_ARENA_RULES OFA_ARENA_HOST
#endif

/* The exact arena ofa_forward_int8 needs in this build (OFA_BUILD_ARENA_RULES). */
ofa_status ofa_arena_bytes_int8(const ofa_config* cfg, int32_t tile_series,
                                size_t* out_bytes);
/* The same under given rules: the host's header emitter sizes a firmware arena. */
ofa_status ofa_arena_bytes_int8_for(const ofa_config* cfg, int32_t tile_series,
                                    ofa_arena_rules rules, size_t* out_bytes);

/* x: (batch, L, C) float -> y: (batch, H, C) float. kernels: NULL selects
 * the portable scalar GEMM. All variants give identical bits. */
ofa_status ofa_forward_int8(const ofa_model_int8* model,
                            const ofa_kernels_int8* kernels,
                            int32_t tile_series, const float* x, int32_t batch,
                            float* y, void* arena, size_t arena_bytes);

/* ofa_forward_int8 for a model that already passed ofa_validate_model_int8
 * (validate once at load; the per-call arguments are still checked). */
ofa_status ofa_forward_int8_validated(const ofa_model_int8* model,
                                      const ofa_kernels_int8* kernels,
                                      int32_t tile_series, const float* x, int32_t batch,
                                      float* y, void* arena, size_t arena_bytes);

/* ofa_forward_int8_validated on series [first_series, first_series +
 * n_series) of the batch only (see ofa_forward_series_validated). */
ofa_status ofa_forward_int8_series_validated(const ofa_model_int8* model,
                                             const ofa_kernels_int8* kernels,
                                             int32_t tile_series, const float* x, int32_t batch,
                                             int32_t first_series, int32_t n_series, float* y,
                                             void* arena, size_t arena_bytes);

/* Classification in int8 (ofa_classify's contract: x (batch, C, L) ->
 * logits (batch, K)). The head (model.head, (K, C*N*d)) sums each window's
 * int32 products over all its channels; logit k = acc * head_out_scale[k]. */
ofa_status ofa_classify_int8(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                             int32_t tile_series, const float* x, int32_t batch, float* logits,
                             void* arena, size_t arena_bytes);

/* ofa_classify_int8 for a validated model, on windows [first_window,
 * first_window + n_windows) of the batch only. */
ofa_status ofa_classify_int8_windows_validated(const ofa_model_int8* model,
                                               const ofa_kernels_int8* kernels,
                                               int32_t tile_series, const float* x, int32_t batch,
                                               int32_t first_window, int32_t n_windows, float* logits,
                                               void* arena, size_t arena_bytes);

#ifdef __cplusplus
}
#endif

#endif /* OFA_OFA_INT8_H */
