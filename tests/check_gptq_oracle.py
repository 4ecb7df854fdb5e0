#!/usr/bin/env python3
"""Independent check of lowbit's GPTQ on real layers: for weights of stories260K with their
calibration Hessians (tests/gptq_main.c), a float64 numpy implementation of the published
algorithm (Frantar et al. 2022, Algorithm 1 without lazy batching, column by column) on the
same grid must reproduce lowbit's decoded weights and its proxy loss tr(ΔW H ΔWᵀ) within 1e-6
relative, and GPTQ must beat RTN.

"The same grid": the oracle takes the per-block scales lowbit chose (the kernels' quantizer,
checked by quants_oracle) and redoes every rounding decision and every error update itself.

usage: check_gptq_oracle.py GPTQ_MAIN SHARED_DIR
Exits 77 (skipped) without stories260K, or without numpy unless LB_REQUIRE_ORACLE=1."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()

np, = oracle_env.require("numpy")

LOSS_RTOL = 1e-6
# (tensor, type, act_order): 64-column layers of every shape (ffn_down's 172-wide rows fit no
# block type), ffn_gate/up being the 172-row ones; all legacy grids and IQ4_NL, both sweep
# orders.
CASES = [
    ("blk.2.ffn_gate.weight", "Q4_0", 0),
    ("blk.2.ffn_gate.weight", "Q4_0", 1),
    ("blk.1.attn_output.weight", "Q5_1", 0),
    ("blk.1.attn_output.weight", "Q5_1", 1),
    ("blk.0.attn_q.weight", "Q8_0", 0),
    ("blk.3.attn_k.weight", "Q4_1", 1),
    ("blk.4.attn_v.weight", "Q5_0", 0),
    ("blk.4.ffn_up.weight", "Q4_1", 0),
    ("blk.0.ffn_up.weight", "Q8_0", 1),
    # the non-uniform grid (a level table): nearest table entry instead of rint
    ("blk.2.ffn_gate.weight", "IQ4_NL", 0),
    ("blk.1.attn_output.weight", "IQ4_NL", 1),
]


def nearest_on_grid(w, scale, offset, qmin, qmax):
    """lb_grid_nearest_level and the decode, in float32 op for op: t = (f32(w) - offset) / scale,
    round half to even (nearbyintf), clamp; value = f32(scale * q) + offset; scale 0 gives q 0."""
    wf = w.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wf - offset) / scale
    q = np.clip(np.rint(t), qmin, qmax)
    # Levels are integers: through int32, rint's -0.0 becomes the +0 that (float)q gives in C.
    q = np.where(scale == 0, np.clip(0, qmin, qmax), q).astype(np.int32).astype(np.float32)
    return (scale * q) + offset


def nearest_on_table(w, scale, offset, levels):
    """lb_grid_nearest_table_level and the decode: every level's value f32(scale * level) +
    offset, the nearest to f32(w) (the first on a tie); scale 0 gives the level nearest 0."""
    wf = w.astype(np.float32)
    values = (scale[:, None] * levels[None, :]) + offset[:, None]
    err = np.abs(wf.astype(np.float64)[:, None] - values.astype(np.float64))
    idx = np.argmin(err, axis=1)
    idx = np.where(scale == 0, np.argmin(np.abs(levels)), idx)
    return values[np.arange(len(idx)), idx]


def gptq_reference(W, H, scale, offset, qmin, qmax, damp, act_order, levels=None):
    """GPTQ, Algorithm 1 of the paper without lazy batches; returns Q in the original order."""
    W = W.astype(np.float64).copy()
    H = H.copy()
    cols = H.shape[0]
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    # Act order: decreasing diag(H), ties by index (a stable sort of -diag).
    perm = np.argsort(-np.diag(H), kind="stable") if act_order else np.arange(cols)
    W, H = W[:, perm], H[np.ix_(perm, perm)]
    S, O = scale[:, perm], offset[:, perm]
    Hd = H + damp * np.mean(np.diag(H)) * np.eye(cols)
    U = np.linalg.cholesky(np.linalg.inv(Hd)).T  # upper, inv(Hd) = Uᵀ U
    Q = np.zeros(W.shape, dtype=np.float32)
    for i in range(cols):
        if levels is not None and len(levels):
            Q[:, i] = nearest_on_table(W[:, i], S[:, i], O[:, i], levels)
        else:
            Q[:, i] = nearest_on_grid(W[:, i], S[:, i], O[:, i], qmin, qmax)
        err = (W[:, i] - Q[:, i].astype(np.float64)) / U[i, i]
        W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
    out = np.empty_like(Q)
    out[:, perm] = Q
    return out


def proxy_loss(W, Q, H):
    D = W.astype(np.float64) - (Q.astype(np.float64) if Q is not None else 0.0)
    return float(np.sum((D @ H) * D))


def main():
    gptq_main, shared = sys.argv[1], sys.argv[2]
    model_dir = os.path.join(shared, "models", "stories260K")
    text = os.path.join(shared, "text", "wiki.test.raw")
    if not os.path.exists(os.path.join(model_dir, "stories260K.bin")):
        print("skipped: stories260K not found")
        return 77
    failures = []
    print(f"{'tensor':<26}{'type':<6}{'act':>4}{'rows':>5}{'dead':>5}{'loss_gptq':>14}"
          f"{'rel.diff':>10}{'mismatch':>9}{'loss_rtn':>14}{'gptq/rtn':>9}")
    for tensor, qtype, act in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            p = subprocess.run([gptq_main, model_dir, text, tmp, tensor, qtype, str(act)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                failures.append(f"{tensor} {qtype} {act}: gptq_main exited {p.returncode}")
                print(p.stderr)
                continue
            rep = json.load(open(os.path.join(tmp, "report.json")))
            rows, cols = rep["rows"], rep["cols"]

            def load(name, dtype, shape):
                return np.fromfile(os.path.join(tmp, name), dtype=dtype).reshape(shape)

            W = load("W.f32", "<f4", (rows, cols))
            H = load("H.f64", "<f8", (cols, cols))
            scale = load("scale.f32", "<f4", (rows, cols))
            offset = load("offset.f32", "<f4", (rows, cols))
            deq = load("deq.f32", "<f4", (rows, cols))
        Q = gptq_reference(W, H, scale, offset, rep["qmin"], rep["qmax"], rep["damp"], act,
                           np.array(rep.get("levels", []), dtype=np.float32))
        loss = proxy_loss(W, Q, H)
        rel = abs(rep["loss_gptq"] - loss) / loss
        mismatches = int(np.count_nonzero(Q.view(np.uint32) != deq.view(np.uint32)))
        ref = proxy_loss(W, None, H)
        ratio = rep["loss_gptq"] / rep["loss_rtn"]
        print(f"{tensor:<26}{qtype:<6}{act:>4}{rows:>5}{rep['dead_columns']:>5}"
              f"{rep['loss_gptq']:>14.6e}{rel:>10.1e}{mismatches:>9}{rep['loss_rtn']:>14.6e}"
              f"{ratio:>9.4f}")
        name = f"{tensor} {qtype} act_order={act}"
        if not (np.array_equal(H, H.T) and np.all(np.diag(H) >= 0) and rep["tokens"] > 0):
            failures.append(f"{name}: the Hessian is not a symmetric sum of x xᵀ")
        if not rel <= LOSS_RTOL:
            failures.append(f"{name}: loss {rep['loss_gptq']!r} vs oracle {loss!r} (rel {rel:.2e})")
        if mismatches:
            failures.append(f"{name}: {mismatches} decoded weights differ from the oracle's")
        if not rep["loss_gptq"] < rep["loss_rtn"]:
            failures.append(f"{name}: GPTQ loss {rep['loss_gptq']} not below RTN's "
                            f"{rep['loss_rtn']}")
        if not abs(rep["ref"] - ref) <= LOSS_RTOL * ref:
            failures.append(f"{name}: tr(W H Wᵀ) {rep['ref']!r} vs {ref!r}")
    for f in failures:
        print("FAIL", f)
    print("gptq oracle:", "failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
