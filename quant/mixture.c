/* Which type each tensor gets, following llama.cpp's llama_tensor_get_type for dense
 * llama-family models.
 *
 * Rules read from ggml-org/llama.cpp src/llama-quant.cpp at commit
 * 007dbbf3fd17eefe9b47fee45f48f7ba5e62b714 (llama_tensor_get_type_impl, tensor_type_fallback,
 * llama_ftype_get_default_type) and the llama_ftype numbers from include/llama.h at commit
 * 0011438e931ec7fd258433f61d411301a759fae2; the rules for the k-quant and legacy ftypes below
 * have been stable since early 2024; the IQ4_NL / IQ4_XS ftypes and the substitutes for rows
 * that fit no block (convert_incompatible_tensor) follow the snapshot of February 2025. Left
 * out: MoE (n_expert) and Falcon rules, the other i-quant ftypes, fused attn_qkv. One
 * deliberate difference: where llama.cpp has no substitute (a legacy type, IQ4_NL or Q8_0 on a
 * row that is not a multiple of 32) it stops with an error; lowbit stores the tensor as F16
 * (lb_kernels_fallback_type), which llama.cpp loads. */
#include "quant/mixture.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"

/* Which blocks a rule singles out (i: block index, n: block count). */
typedef enum layer_select {
    SEL_NEVER = 0,          /* no rule: the base type everywhere */
    SEL_ALL,
    SEL_MORE_BITS,          /* llama.cpp's use_more_bits: first and last eighth, every third */
    SEL_FIRST_2,            /* i < 2 */
    SEL_FIRST_4,            /* i < 4 */
    SEL_FIRST_SIXTEENTH,    /* i < n/16 */
    SEL_FIRST_EIGHTH,       /* i < n/8 */
    SEL_FIRST_EIGHTH_IMATRIX, /* i < n/8, only with an importance matrix */
    SEL_FIRST_EIGHTH_NO_IMATRIX, /* i < n/8, only without an importance matrix */
    SEL_GQA_4,              /* n_heads / n_kv_heads >= 4 (any block) */
} layer_select;

/* Selected blocks get `hit`, the others `miss`. */
typedef struct role_rule {
    layer_select select;
    lb_type hit, miss;
} role_rule;

/* A llama.cpp ftype. Besides these rules every preset gives output.weight (and token_embd when
 * it is tied to the output) Q6_K, or Q8_0 for Q8_0 and when ne[0] does not fit the base type. */
typedef struct preset {
    const char *name;
    uint32_t ftype; /* llama_ftype */
    lb_type base;
    role_rule attn_v, attn_output, ffn_down;
} preset;

#define T(x) LB_TYPE_##x
static const preset presets[] = {
    /* name     ftype base     attn_v                              attn_output              ffn_down */
    {"Q4_K_M", 15, T(Q4_K), {SEL_MORE_BITS, T(Q6_K), T(Q4_K)}, {0}, {SEL_MORE_BITS, T(Q6_K), T(Q4_K)}},
    {"Q4_K_S", 14, T(Q4_K), {SEL_FIRST_4, T(Q5_K), T(Q4_K)}, {0}, {SEL_FIRST_EIGHTH, T(Q5_K), T(Q4_K)}},
    {"Q3_K_M", 12, T(Q3_K), {SEL_FIRST_2, T(Q5_K), T(Q4_K)}, {SEL_ALL, T(Q4_K), T(Q4_K)},
     {SEL_FIRST_SIXTEENTH, T(Q5_K), T(Q4_K)}},
    {"Q3_K_S", 11, T(Q3_K), {0}, {0}, {0}},
    {"Q3_K_L", 13, T(Q3_K), {SEL_ALL, T(Q5_K), T(Q5_K)}, {SEL_ALL, T(Q5_K), T(Q5_K)},
     {SEL_ALL, T(Q5_K), T(Q5_K)}},
    {"Q5_K_M", 17, T(Q5_K), {SEL_MORE_BITS, T(Q6_K), T(Q5_K)}, {0}, {SEL_MORE_BITS, T(Q6_K), T(Q5_K)}},
    {"Q5_K_S", 16, T(Q5_K), {0}, {0}, {0}},
    {"Q6_K", 18, T(Q6_K), {0}, {0}, {0}},
    {"Q2_K", 10, T(Q2_K), {SEL_GQA_4, T(Q4_K), T(Q3_K)}, {SEL_ALL, T(Q3_K), T(Q3_K)},
     {SEL_ALL, T(Q3_K), T(Q3_K)}},
    {"Q4_0", 2, T(Q4_0), {0}, {0}, {SEL_FIRST_EIGHTH_IMATRIX, T(Q4_1), T(Q4_0)}},
    {"Q4_1", 3, T(Q4_1), {0}, {0}, {0}},
    {"Q5_0", 8, T(Q5_0), {0}, {0}, {SEL_FIRST_EIGHTH_IMATRIX, T(Q5_1), T(Q5_0)}},
    {"Q5_1", 9, T(Q5_1), {0}, {0}, {0}},
    {"Q8_0", 7, T(Q8_0), {0}, {0}, {0}},
    {"IQ4_NL", 25, T(IQ4_NL), {SEL_GQA_4, T(Q5_K), T(IQ4_NL)}, {0},
     {SEL_FIRST_EIGHTH_NO_IMATRIX, T(Q5_K), T(IQ4_NL)}},
    {"IQ4_XS", 30, T(IQ4_XS), {SEL_GQA_4, T(Q5_K), T(IQ4_XS)}, {0},
     {SEL_FIRST_EIGHTH_NO_IMATRIX, T(Q5_K), T(IQ4_XS)}},
};

/* Types that are not preset names: every matrix gets the type. file_type is the ftype that
 * llama.cpp's loader guesses from a file's most common type. */
static const struct {
    lb_type type;
    uint32_t ftype;
} plain_types[] = {
    {T(F32), 0}, {T(F16), 1}, {T(BF16), 32}, {T(Q3_K), 12}, {T(Q4_K), 15}, {T(Q5_K), 17},
};
#undef T

#define N_PRESETS (sizeof presets / sizeof presets[0])
#define N_PLAIN (sizeof plain_types / sizeof plain_types[0])

static const char *const role_names[LB_ROLE_COUNT] = {
    [LB_ROLE_OTHER] = "other",           [LB_ROLE_TOKEN_EMBD] = "token_embd",
    [LB_ROLE_OUTPUT] = "output",         [LB_ROLE_ATTN_Q] = "attn_q",
    [LB_ROLE_ATTN_K] = "attn_k",         [LB_ROLE_ATTN_V] = "attn_v",
    [LB_ROLE_ATTN_OUTPUT] = "attn_output", [LB_ROLE_FFN_GATE] = "ffn_gate",
    [LB_ROLE_FFN_UP] = "ffn_up",         [LB_ROLE_FFN_DOWN] = "ffn_down",
};

const char *lb_mixture_names(void)
{
    return "Q4_K_M, Q4_K_S, Q3_K_M, Q3_K_S, Q3_K_L, Q5_K_M, Q5_K_S, Q6_K, Q2_K, Q4_0, Q4_1, "
           "Q5_0, Q5_1, Q8_0, IQ4_NL, IQ4_XS (llama.cpp presets); F32, F16, BF16, Q3_K, Q4_K, "
           "Q5_K (one type for every matrix)";
}

const char *lb_tensor_role_name(lb_tensor_role role)
{
    return (unsigned)role < LB_ROLE_COUNT ? role_names[role] : "unknown";
}

lb_tensor_role lb_tensor_role_of(const char *name, int64_t *layer)
{
    int64_t block = -1;
    if (layer)
        *layer = -1;
    if (!name)
        return LB_ROLE_OTHER;
    const char *p = name;
    if (strncmp(p, "blk.", 4) == 0) {
        p += 4;
        if (!isdigit((unsigned char)*p))
            return LB_ROLE_OTHER;
        block = 0;
        for (int digits = 0; isdigit((unsigned char)*p); p++, digits++) {
            if (digits == 9) /* no model has a billion blocks */
                return LB_ROLE_OTHER;
            block = block * 10 + (*p - '0');
        }
        if (*p++ != '.')
            return LB_ROLE_OTHER;
    }
    for (int r = LB_ROLE_TOKEN_EMBD; r < LB_ROLE_COUNT; r++) {
        size_t len = strlen(role_names[r]);
        /* The stem must end the name or be followed by '.': attn_q is not attn_qkv. */
        if (strncmp(p, role_names[r], len) == 0 && (p[len] == '.' || p[len] == '\0')) {
            if (layer)
                *layer = block;
            return (lb_tensor_role)r;
        }
    }
    if (layer)
        *layer = block;
    return LB_ROLE_OTHER;
}

static bool equal_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (toupper((unsigned char)*a) != toupper((unsigned char)*b))
            return false;
    return *a == *b;
}

lb_status lb_mixture_parse(lb_mixture *out, const char *name)
{
    if (!out || !name)
        return lb_error(LB_ERR_INVALID_ARG, "quantization type: no name given");
    memset(out, 0, sizeof *out);
    out->preset = -1;
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (equal_nocase(presets[i].name, name)) {
            snprintf(out->name, sizeof out->name, "%s", presets[i].name);
            out->base = presets[i].base;
            out->file_type = presets[i].ftype;
            out->is_preset = true;
            out->preset = (int)i;
            return LB_OK;
        }
    }
    for (size_t i = 0; i < N_PLAIN; i++) {
        const lb_type_info *info = lb_type_get((uint32_t)plain_types[i].type);
        if (info && equal_nocase(info->name, name)) {
            snprintf(out->name, sizeof out->name, "%s", info->name);
            out->base = plain_types[i].type;
            out->file_type = plain_types[i].ftype;
            return LB_OK;
        }
    }
    return lb_error(LB_ERR_INVALID_ARG, "unknown quantization type '%s' (valid: %s)", name,
                    lb_mixture_names());
}

lb_status lb_mixture_set_override(lb_mixture *m, lb_tensor_role role, lb_type type)
{
    if (!m || (unsigned)role >= LB_ROLE_COUNT || role == LB_ROLE_OTHER)
        return lb_error(LB_ERR_INVALID_ARG, "type override: invalid tensor role %d", (int)role);
    const lb_type_info *info = lb_type_get((uint32_t)type);
    if (!info || !lb_kernels_type(type) || type == LB_TYPE_Q8_K)
        return lb_error(LB_ERR_INVALID_ARG, "type override for %s: type %s cannot store weights",
                        role_names[role], info ? info->name : "(unknown)");
    m->has_override[role] = true;
    m->override_type[role] = type;
    return LB_OK;
}

void lb_mixture_model_from_hparams(lb_mixture_model *out, const lb_hparams *hparams)
{
    memset(out, 0, sizeof *out);
    out->n_layers = hparams->n_layers;
    out->n_heads = hparams->n_heads;
    out->n_kv_heads = hparams->n_kv_heads;
    out->has_output = !hparams->tied_embeddings;
    /* llama.cpp's LLM_TYPE_70B: qwen2 with 80 blocks; llama with 80 blocks and GQA (the
     * 80-block llama without GQA is LLaMA-1 65B). */
    out->is_70b = hparams->n_layers == 80 &&
                  (strcmp(hparams->arch, "qwen2") == 0 || hparams->n_heads != hparams->n_kv_heads);
}

/* llama.cpp's use_more_bits: the first and last eighth of the blocks, and every third between. */
static bool use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static lb_type apply_rule(const role_rule *rule, lb_type base, const lb_mixture_model *model,
                          int64_t i)
{
    const int64_t n = model->n_layers;
    bool hit;
    switch (rule->select) {
    case SEL_ALL: hit = true; break;
    case SEL_MORE_BITS: hit = use_more_bits(i, n); break;
    case SEL_FIRST_2: hit = i < 2; break;
    case SEL_FIRST_4: hit = i < 4; break;
    case SEL_FIRST_SIXTEENTH: hit = i < n / 16; break;
    case SEL_FIRST_EIGHTH: hit = i < n / 8; break;
    case SEL_FIRST_EIGHTH_IMATRIX: hit = model->has_imatrix && i < n / 8; break;
    case SEL_FIRST_EIGHTH_NO_IMATRIX: hit = !model->has_imatrix && i < n / 8; break;
    case SEL_GQA_4:
        hit = model->n_kv_heads > 0 && model->n_heads / model->n_kv_heads >= 4;
        break;
    default: return base;
    }
    return hit ? rule->hit : rule->miss;
}

static lb_type preset_type(const preset *p, const lb_mixture_model *model, lb_tensor_role role,
                           int64_t layer, int64_t row_length, bool tied_embd)
{
    if (role == LB_ROLE_OUTPUT || tied_embd) {
        if (!lb_kernels_row_fits(p->base, row_length))
            return LB_TYPE_Q8_0;
        return p->base == LB_TYPE_Q8_0 ? LB_TYPE_Q8_0 : LB_TYPE_Q6_K;
    }
    int64_t i = layer < 0 ? 0 : layer;
    switch (role) {
    case LB_ROLE_ATTN_V: {
        lb_type t = apply_rule(&p->attn_v, p->base, model, i);
        /* 70B: attn_v is 8x smaller than attn_q (GQA), so more bits cost little. */
        if (model->is_70b && (t == LB_TYPE_Q3_K || t == LB_TYPE_Q4_K))
            t = LB_TYPE_Q5_K;
        return t;
    }
    case LB_ROLE_ATTN_OUTPUT: return apply_rule(&p->attn_output, p->base, model, i);
    case LB_ROLE_FFN_DOWN: return apply_rule(&p->ffn_down, p->base, model, i);
    default: return p->base;
    }
}

/* llama.cpp quantizes only tensors of 2+ dimensions whose name ends in "weight", not norms. */
static bool quantizable(const char *name, int n_dims)
{
    size_t len = strlen(name);
    return n_dims >= 2 && len >= 6 && strcmp(name + len - 6, "weight") == 0 &&
           !strstr(name, "_norm.weight");
}

lb_type lb_mixture_tensor_type(const lb_mixture *m, const lb_mixture_model *model,
                               const char *name, int n_dims, const int64_t *ne)
{
    static const lb_mixture_model no_model = {0, 0, 0, true, false, false};
    if (!m || !name || !ne || n_dims > LB_MAX_DIMS || !quantizable(name, n_dims))
        return LB_TYPE_F32;
    if (!model)
        model = &no_model;
    int64_t layer;
    lb_tensor_role role = lb_tensor_role_of(name, &layer);
    bool tied_embd = role == LB_ROLE_TOKEN_EMBD && !model->has_output;
    lb_type type;
    if (m->has_override[role])
        type = m->override_type[role];
    else if (tied_embd && m->has_override[LB_ROLE_OUTPUT])
        type = m->override_type[LB_ROLE_OUTPUT];
    else if (m->is_preset && m->preset >= 0 && (size_t)m->preset < N_PRESETS)
        type = preset_type(&presets[m->preset], model, role, layer, ne[0], tied_embd);
    else
        type = m->base;
    return lb_kernels_fallback_type(type, ne[0]);
}
