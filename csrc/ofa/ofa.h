/* ofa.h - public C API of the ofa inference engine (fp32).
 *
 * Freestanding: no heap, no OS, no exceptions. All scratch memory comes from
 * one caller-provided arena whose exact size ofa_arena_bytes() reports.
 * Weights are borrowed (zero-copy): the engine only ever reads them.
 */
#ifndef OFA_OFA_H
#define OFA_OFA_H

#include <stddef.h>
#include <stdint.h>

#include "ofa_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The arena must start on this boundary so region offsets (and therefore the
 * planned size) do not depend on where the caller's buffer happens to sit. */
#define OFA_ARENA_ALIGN 64

typedef enum ofa_status {
  OFA_OK = 0,
  OFA_ERR_NULL_ARG = 1,        /* a required pointer argument is NULL */
  OFA_ERR_BAD_CONFIG = 2,      /* config fails ofa_validate_config */
  OFA_ERR_MISSING_TENSOR = 3,  /* a weight the config needs is NULL */
  OFA_ERR_BAD_BATCH = 4,       /* batch <= 0 or tile_series <= 0 */
  OFA_ERR_ARENA_TOO_SMALL = 5, /* arena_bytes < ofa_arena_bytes(...) */
  OFA_ERR_ARENA_MISALIGNED = 6, /* arena not OFA_ARENA_ALIGN aligned */
  OFA_ERR_BAD_QUANT = 7, /* int8: a multiplier, shift, scale or bias out of range */
  OFA_ERR_BAD_TENSOR = 8, /* a value the forward pass cannot use: non-finite scaler, std <= 0 */
  OFA_ERR_ARENA_TOO_LARGE = 9 /* the plan exceeds OFA_MAX_ARENA_BYTES */
} ofa_status;

/* The most arena one forward plan may ask for, whatever a model file says (a tiny file can describe
 * a huge attention area). Hosts that allocate what ofa_arena_bytes*() reports rely on it; raise it
 * at build time with -DOFA_MAX_ARENA_BYTES=N. */
#ifndef OFA_MAX_ARENA_BYTES
#define OFA_MAX_ARENA_BYTES ((uint64_t)1 << (sizeof(size_t) >= 8 ? 32 : 30))
#endif

typedef enum ofa_layout {
  OFA_LAYOUT_BERT = 0, /* post-LN, bidirectional, embedding LN */
  OFA_LAYOUT_GPT2 = 1  /* pre-LN, causal, final LN */
} ofa_layout;

/* What the head computes. A forecaster: per series, H values, de-normalised
 * (ofa_forward). A classifier: per window, K logits from all its channels'
 * states (ofa_classify). */
typedef enum ofa_task {
  OFA_TASK_FORECAST = 0,
  OFA_TASK_CLASSIFY = 1
} ofa_task;

/* How a series is normalised before patching. INSTANCE: the scaler, then the
 * series' own mean / std (RevIN; a forecaster's only choice, its output is
 * de-normalised with them; a classifier with instance norm carries the
 * identity scaler). GLOBAL: the scaler only (classify only). */
typedef enum ofa_norm {
  OFA_NORM_INSTANCE = 0,
  OFA_NORM_GLOBAL = 1
} ofa_norm;

/* How a classifier's windows become token sequences. CHANNEL: each channel is
 * its own sequence of N patch tokens of P values (as a forecaster's series).
 * JOINED: GPT4TS's tokens, one sequence per window: token n holds patch n of
 * every channel, value p*C + c (classify only). */
typedef enum ofa_tokens {
  OFA_TOKENS_CHANNEL = 0,
  OFA_TOKENS_JOINED = 1
} ofa_tokens;

typedef struct ofa_config {
  int32_t layout;     /* ofa_layout */
  int32_t d_model;    /* d */
  int32_t n_heads;    /* d % n_heads == 0 */
  int32_t d_ff;       /* f */
  int32_t n_layers;
  int32_t seq_len;    /* L */
  int32_t patch_len;  /* P <= L */
  int32_t stride;     /* S */
  int32_t horizon;    /* H; 0 for a classifier */
  int32_t n_channels; /* C */
  int32_t head_rank;  /* r; 0 = dense head */
  int32_t gelu;       /* ofa_gelu */
  float ln_eps;
  float revin_eps;
  int32_t linear_path; /* 1: add the linear path (needs stride <= patch_len) */
  int32_t task;       /* ofa_task */
  int32_t n_classes;  /* K >= 2, classify only (0 for a forecaster) */
  int32_t norm;       /* ofa_norm */
  int32_t tokens;     /* ofa_tokens; CHANNEL for a forecaster */
} ofa_config;

typedef struct ofa_layer_weights {
  const float* attn_qkv_w; /* (3d, d), rows [q; k; v] */
  const float* attn_qkv_b; /* (3d) */
  const float* attn_out_w; /* (d, d) */
  const float* attn_out_b; /* (d) */
  const float* ln1_w;      /* (d) */
  const float* ln1_b;
  const float* ln2_w;
  const float* ln2_b;
  const float* ff_in_w;  /* (f, d) */
  const float* ff_in_b;  /* (f) */
  const float* ff_out_w; /* (d, f) */
  const float* ff_out_b; /* (d) */
} ofa_layer_weights;

/* Weights packed once, at load, by one kernel table's pack_w (a host
 * engine's choice; firmware leaves ofa_model.prepacked NULL). The forward pass
 * uses them only with a table whose pack_w is that same function (the layout
 * is pack_w's); a NULL entry falls back to the plain (out, in) matrix. */
typedef struct ofa_prepacked_layer {
  const float* attn_qkv_w;
  const float* attn_out_w;
  const float* ff_in_w;
  const float* ff_out_w;
} ofa_prepacked_layer;

typedef struct ofa_prepacked {
  /* the pack_w that wrote these */
  void (*pack_w)(const float* w, int32_t ldw, int32_t n, int32_t k, float* dst);
  const float* in_w;
  const float* head_w;
  const float* head_a;
  const float* head_b_lr;
  const float* linear_w;
  const ofa_prepacked_layer* layers;  /* n_layers entries, or NULL */
} ofa_prepacked;

/* All matrices row-major (out, in), float32, contiguous. */
typedef struct ofa_model {
  ofa_config config;
  const float* in_w;     /* (d, W), W = ofa_token_width: P, or P*C for joined tokens */
  const float* in_b;     /* (d) */
  const float* pos;      /* (N, d) */
  const float* emb_ln_w; /* (d), BERT only */
  const float* emb_ln_b;
  const ofa_layer_weights* layers; /* n_layers entries */
  const float* final_ln_w; /* (d), GPT-2 only */
  const float* final_ln_b;
  const float* head_w;    /* (H, N*d), head_rank == 0; classify: (K, C*N*d) */
  const float* head_a;    /* (r, N*d), head_rank > 0 */
  const float* head_b_lr; /* (H, r),   head_rank > 0 */
  const float* head_bias; /* (H); classify: (K) */
  const float* scaler_mean; /* (C) */
  const float* scaler_std;  /* (C) */
  /* Linear path, linear_path == 1: forecast = (head + W u) * sd + mu + b, with
   * u the instance-normalised window (python/ofa/linear_path.py). */
  const float* linear_w; /* (H, L) */
  const float* linear_b; /* (H), added after the instance de-normalisation */
  const ofa_prepacked* prepacked; /* NULL: every gemm packs its own W */
} ofa_model;

/* N = (L - P) / S + 2; 0 when the config is invalid. */
int32_t ofa_n_patches(const ofa_config* cfg);

/* The patch count, the one place its formula is written (C and C++): the
 * window cut into patch_len steps every stride after GPT4TS's replication
 * padding by one stride. Unchecked: ofa_n_patches is the validating form. */
static inline int32_t ofa_patch_count(int32_t seq_len, int32_t patch_len, int32_t stride) {
  return (seq_len - patch_len) / stride + 2;
}

/* The token layout, the one place it is written (ofa_tokens). A token's
 * width W, the input layer's depth: P, or P*C when joined. The token
 * sequences ("series") of one window: C, or 1 when joined. Unchecked. */
static inline int32_t ofa_token_width(const ofa_config* c) {
  return c->tokens == OFA_TOKENS_JOINED ? c->patch_len * c->n_channels : c->patch_len;
}
static inline int32_t ofa_window_sequences(const ofa_config* c) {
  return c->tokens == OFA_TOKENS_JOINED ? 1 : c->n_channels;
}

/* The dense head's outputs and depth, the one place its shape is written: a
 * forecaster's reads one series' flattened (N, d) states (H, N*d); a
 * classifier's reads one window's, sequence after sequence, (K, C*N*d):
 * feature c*N*d + n*d + j is channel c, patch n, width j (joined tokens: one
 * sequence, (K, N*d)). Unchecked. */
static inline int32_t ofa_head_outputs(const ofa_config* c) {
  return c->task == OFA_TASK_CLASSIFY ? c->n_classes : c->horizon;
}
static inline int64_t ofa_head_depth(const ofa_config* c) {
  const int64_t flat = (int64_t)ofa_patch_count(c->seq_len, c->patch_len, c->stride) * c->d_model;
  return c->task == OFA_TASK_CLASSIFY ? flat * ofa_window_sequences(c) : flat;
}

/* The series (token sequences) one tile of tile_series holds. A classifier's
 * tiles hold whole windows (its head reads all of a window's sequences):
 * tile_series / ofa_window_sequences of them, at least one. Unchecked. */
static inline int32_t ofa_tile_series(const ofa_config* c, int32_t tile_series) {
  if (c->task != OFA_TASK_CLASSIFY) return tile_series;
  const int32_t per_window = ofa_window_sequences(c);
  const int32_t windows = tile_series / per_window;
  return (windows > 1 ? windows : 1) * per_window;
}

ofa_status ofa_validate_config(const ofa_config* cfg);

/* Checks config and that every tensor the config needs is present. */
ofa_status ofa_validate_model(const ofa_model* model);

/* Exact arena size for ofa_forward / ofa_classify with this tile_series
 * (series per tile; ofa_tile_series for a classifier). */
ofa_status ofa_arena_bytes(const ofa_config* cfg, int32_t tile_series,
                           size_t* out_bytes);

/* x: (batch, L, C) -> y: (batch, H, C). kernels: NULL selects the portable
 * scalar kernels (ofa_kernels_scalar). On any error nothing is written to y
 * or to the arena. */
ofa_status ofa_forward(const ofa_model* model, const ofa_kernels* kernels,
                       int32_t tile_series, const float* x, int32_t batch,
                       float* y, void* arena, size_t arena_bytes);

/* ofa_forward for a model that already passed ofa_validate_model: validate once
 * at load, then run any number of calls without walking the weights again.
 * The arguments (pointers, batch, arena) are still checked on every call. */
ofa_status ofa_forward_validated(const ofa_model* model, const ofa_kernels* kernels,
                                 int32_t tile_series, const float* x, int32_t batch,
                                 float* y, void* arena, size_t arena_bytes);

/* ofa_forward_validated on series [first_series, first_series + n_series)
 * only, of the batch's batch * C (series g is channel g % C of window g / C):
 * a host splits a batch, even one window, over threads this way. Only those
 * series' forecasts are written to y. OFA_ERR_BAD_BATCH for a range outside
 * the batch. */
ofa_status ofa_forward_series_validated(const ofa_model* model, const ofa_kernels* kernels,
                                        int32_t tile_series, const float* x, int32_t batch,
                                        int32_t first_series, int32_t n_series, float* y,
                                        void* arena, size_t arena_bytes);

/* Classification (config.task == OFA_TASK_CLASSIFY): x (batch, C, L), each
 * window channel after channel, in the data's units -> logits (batch, K).
 * Normalisation (config.norm) and patches run per channel as for a
 * forecaster; the layers run per token sequence (config.tokens); the head is
 * one GEMM per tile over each window's states. A forecaster's model gives
 * OFA_ERR_BAD_CONFIG here, a classifier's gives it in ofa_forward*. On any
 * error nothing is written to logits. */
ofa_status ofa_classify(const ofa_model* model, const ofa_kernels* kernels, int32_t tile_series,
                        const float* x, int32_t batch, float* logits, void* arena, size_t arena_bytes);

/* ofa_classify for a model that passed ofa_validate_model, on windows
 * [first_window, first_window + n_windows) of the batch only (a host splits a
 * batch over threads this way); only their logits are written. */
ofa_status ofa_classify_windows_validated(const ofa_model* model, const ofa_kernels* kernels,
                                          int32_t tile_series, const float* x, int32_t batch,
                                          int32_t first_window, int32_t n_windows, float* logits,
                                          void* arena, size_t arena_bytes);

const char* ofa_status_name(ofa_status status);

#ifdef __cplusplus
}
#endif

#endif /* OFA_OFA_H */
