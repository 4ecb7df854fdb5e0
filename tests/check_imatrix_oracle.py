#!/usr/bin/env python3
"""Independent check of lowbit's imatrix files against llama.cpp's formats: llama.cpp's own
Python package (`gguf`, GGUFReader / GGUFWriter) reads what lowbit writes and writes what
lowbit must read, legacy .dat files are packed and unpacked here with `struct`, and both are
turned into importance values the way llama.cpp's quantize does (tools/quantize/quantize.cpp
load_imatrix / load_legacy_imatrix), which must equal what lowbit computes.

usage: check_imatrix_oracle.py IMATRIX_MAIN
Exits 77 (skipped) when the gguf package is unavailable, unless LB_REQUIRE_ORACLE=1."""
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_env  # noqa: E402

oracle_env.use_oracle_python()
np, gguf = oracle_env.require("numpy", "gguf")

failures = 0


def check(cond, what):
    global failures
    if not cond:
        print("FAIL", what)
        failures += 1
    return cond


def run(tool, *args):
    return subprocess.run([tool] + list(args), check=True, capture_output=True,
                          text=True).stdout


def parse_dump(text):
    """imatrix_main's printout (see tests/imatrix_main.c) as a dict."""
    out = {"datasets": [], "entries": {}, "order": []}
    cur = None
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("chunk_count", "chunk_size"):
            out[word] = int(rest)
        elif word == "entries":
            out["n_entries"] = int(rest)
        elif word == "dataset":
            out["datasets"].append(rest)
        elif word == "entry":
            name, n_per_row, n_mat = rest.rsplit(" ", 2)
            cur = {"n_per_row": int(n_per_row), "n_mat": int(n_mat), "sum_sq": [],
                   "importance": []}
            out["entries"][name] = cur
            out["order"].append(name)
        elif word == "counts":
            cur["counts"] = [int(x) for x in rest.split()]
        elif word in ("sum_sq", "importance"):
            values = rest.split()[1:]
            dtype = np.float64 if word == "sum_sq" else np.float32
            cur[word].append(np.array([float(v) for v in values], dtype=dtype))
    assert out.get("n_entries") == len(out["entries"]), "dump: entry count"
    for e in out["entries"].values():
        e["sum_sq"] = np.array(e["sum_sq"], dtype=np.float64).reshape(e["n_mat"], e["n_per_row"])
        e["importance"] = np.array(e["importance"], dtype=np.float32).reshape(-1)
    return out


# ---- llama.cpp's legacy format (save_imatrix_legacy), with struct ----

def read_legacy(path):
    """Entries [(name, ncall, float32 values)], chunk count or None, dataset or None."""
    raw = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return vals

    (n_entries,) = take("<i")
    entries = []
    for _ in range(n_entries):
        (length,) = take("<i")
        name = raw[pos:pos + length].decode()
        pos += length
        ncall, nval = take("<ii")
        values = np.frombuffer(raw, dtype="<f4", count=nval, offset=pos).copy()
        pos += 4 * nval
        entries.append((name, ncall, values))
    chunks = dataset = None
    if pos < len(raw):
        (chunks,) = take("<i")
        (length,) = take("<i")
        dataset = raw[pos:pos + length].decode()
        pos += length
    assert pos == len(raw), f"{path}: {len(raw) - pos} bytes left over"
    return entries, chunks, dataset


def write_legacy_like_llama(path, stats, chunk_size, last_chunk, dataset, trailer=True):
    """stats: {name: (sums [n_mat][n_per_row], counts [n_mat])}, as save_imatrix_legacy writes
    them: entries without data skipped, sorted names, float arithmetic."""
    out = b""
    names = sorted(n for n, (_, counts) in stats.items() if any(c != 0 for c in counts))
    out += struct.pack("<i", len(names))
    for name in names:
        sums, counts = stats[name]
        sums = np.asarray(sums, dtype=np.float32).reshape(len(counts), -1)
        ncall = (max(counts) + chunk_size - 1) // chunk_size
        out += struct.pack("<i", len(name)) + name.encode() + struct.pack("<ii", ncall, sums.size)
        tmp = np.empty(sums.shape, dtype=np.float32)
        for m, c in enumerate(counts):
            count = np.float32(c)
            if count == 0:
                tmp[m] = np.float32(1) / np.float32(1) * np.float32(ncall)
            else:
                tmp[m] = (sums[m] / count) * np.float32(ncall)
        out += tmp.astype("<f4").tobytes()
    if trailer:
        out += struct.pack("<i", last_chunk)
        out += struct.pack("<i", len(dataset)) + dataset.encode()
    with open(path, "wb") as f:
        f.write(out)


# ---- llama.cpp's GGUF format (save_imatrix), with gguf.GGUFWriter ----

def write_gguf_like_llama(path, stats, datasets, chunk_count, chunk_size, in_sum=()):
    """Metadata and tensors in save_imatrix's order; ggml drops trailing 1-dimensions, so an
    ordinary weight's tensors are 1-d. `in_sum`: names that also get a .in_sum tensor."""
    w = gguf.GGUFWriter(path, "imatrix")
    w.kv_data[0].pop("general.architecture")  # save_imatrix writes no architecture
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", list(datasets))
    w.add_uint32("imatrix.chunk_count", chunk_count)
    w.add_uint32("imatrix.chunk_size", chunk_size)
    for name in sorted(stats):
        sums, counts = stats[name]
        n_mat = len(counts)
        sums = np.asarray(sums, dtype=np.float32).reshape(n_mat, -1)
        counts = np.asarray(counts, dtype=np.float32).reshape(n_mat, 1)
        if n_mat == 1:
            sums, counts = sums.reshape(-1), counts.reshape(-1)
        w.add_tensor(name + ".in_sum2", sums)
        w.add_tensor(name + ".counts", counts)
        if name in in_sum:
            w.add_tensor(name + ".in_sum", np.sqrt(sums).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def field_value(reader, key):
    field = reader.fields[key]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    return field.parts[field.data[0]][0]


# ---- what llama.cpp's quantize makes of a file ----

def quantize_view(path):
    """(values per weight, chunk count, datasets) as tools/quantize/quantize.cpp loads them:
    GGUF: in_sum2 / counts per matrix (1 where the count is 0), needing the three imatrix.*
    keys with UINT32 chunk values and at least one dataset; legacy: values / ncall."""
    values = {}
    with open(path, "rb") as f:
        is_gguf = f.read(4) == b"GGUF"
    if not is_gguf:
        entries, chunks, dataset = read_legacy(path)
        for name, ncall, v in entries:
            values[name] = v / np.float32(ncall) if ncall > 0 else v
        return values, chunks or 0, [dataset] if dataset is not None else []
    r = gguf.GGUFReader(path)
    for key in ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"):
        if not check(key in r.fields, f"{path}: quantize needs {key}"):
            return values, 0, []
    for key in ("imatrix.chunk_count", "imatrix.chunk_size"):
        check(r.fields[key].types[0] == gguf.GGUFValueType.UINT32,
              f"{path}: {key} must be UINT32 (gguf_get_val_u32)")
    datasets = field_value(r, "imatrix.datasets")
    check(len(datasets) >= 1, f"{path}: quantize prints datasets[0]")
    tensors = {t.name: t for t in r.tensors}
    for name, t in tensors.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name[:-len(".in_sum2")]
        counts_t = tensors.get(base + ".counts")
        if not check(counts_t is not None, f"{path}: {base} has no counts"):
            continue
        ne0 = int(t.shape[0])
        ne1 = int(t.shape[1]) if len(t.shape) > 1 else 1
        sums = np.asarray(t.data, dtype=np.float32).reshape(-1)
        counts = np.asarray(counts_t.data, dtype=np.float32).reshape(-1)
        e = np.empty(ne0 * ne1, dtype=np.float32)
        for j in range(ne1):
            count = counts[j]
            e[j * ne0:(j + 1) * ne0] = sums[j * ne0:(j + 1) * ne0] / count if count > 0 else 1
        values[base] = e
    return values, int(field_value(r, "imatrix.chunk_count")), datasets


def same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def close(a, b, rel=3e-7):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rel * np.abs(b)))


def check_dump_matches_quantize(tool, path, label):
    """lowbit's importance of every entry equals what quantize computes from the same file."""
    dump = parse_dump(run(tool, "dump", path))
    view, chunks, datasets = quantize_view(path)
    check(sorted(view) == dump["order"], f"{label}: entry names {dump['order']} vs {sorted(view)}")
    for name, want in view.items():
        if name in dump["entries"]:
            got = dump["entries"][name]["importance"]
            check(same_bits(got, want), f"{label}: {name} importance differs from quantize's")
    check(dump["chunk_count"] == chunks, f"{label}: chunk_count {dump['chunk_count']} vs {chunks}")
    check(dump["datasets"] == [d for d in datasets if d],
          f"{label}: datasets {dump['datasets']} vs {datasets}")
    return dump, view


def check_lowbit_gguf(tool, tmp):
    path = os.path.join(tmp, "lowbit.gguf")
    made = parse_dump(run(tool, "make", path))
    r = gguf.GGUFReader(path)
    keys = [k for k in r.fields if not k.startswith("GGUF.")]
    check(keys == ["general.type", "imatrix.datasets", "imatrix.chunk_count",
                   "imatrix.chunk_size"], f"lowbit gguf: keys {keys}")
    check(field_value(r, "general.type") == "imatrix", "lowbit gguf: general.type")
    check(field_value(r, "imatrix.datasets") == made["datasets"], "lowbit gguf: datasets")
    for key, want in (("imatrix.chunk_count", made["chunk_count"]),
                      ("imatrix.chunk_size", made["chunk_size"])):
        check(r.fields[key].types[0] == gguf.GGUFValueType.UINT32, f"lowbit gguf: {key} type")
        check(int(field_value(r, key)) == want, f"lowbit gguf: {key} value")
    want_names = []
    for name in sorted(made["entries"]):
        want_names += [name + ".in_sum2", name + ".counts"]
    got_names = [t.name for t in r.tensors]
    check(got_names == want_names, f"lowbit gguf: tensor order {got_names}")
    tensors = {t.name: t for t in r.tensors}
    for name, e in made["entries"].items():
        sums, counts = tensors.get(name + ".in_sum2"), tensors.get(name + ".counts")
        if not check(sums is not None and counts is not None, f"lowbit gguf: {name} tensors"):
            continue
        n_mat = e["n_mat"]
        for t, shape in ((sums, [e["n_per_row"]] + ([n_mat] if n_mat > 1 else [])),
                         (counts, [1] + ([n_mat] if n_mat > 1 else []))):
            check(t.tensor_type == gguf.GGMLQuantizationType.F32, f"{t.name}: type")
            check([int(x) for x in t.shape] == shape, f"{t.name}: shape {list(t.shape)} != {shape}")
            check(t.data_offset % 32 == 0, f"{t.name}: data not aligned to 32")
        check(same_bits(np.asarray(sums.data).reshape(-1), e["sum_sq"].reshape(-1)),
              f"lowbit gguf: {name}.in_sum2 != float32(sum_sq)")
        check(same_bits(np.asarray(counts.data).reshape(-1), e["counts"]),
              f"lowbit gguf: {name}.counts")
    _, view = check_dump_matches_quantize(tool, path, "lowbit gguf")
    for name, e in made["entries"].items():
        check(name in view and close(view[name], e["importance"]),
              f"lowbit gguf: quantize's importance of {name} is not lowbit's")
    print(f"lowbit GGUF: {len(made['entries'])} entries checked with GGUFReader")
    return made


def check_lowbit_legacy(tool, tmp):
    path = os.path.join(tmp, "lowbit.dat")
    made = parse_dump(run(tool, "make", path))
    entries, chunks, dataset = read_legacy(path)
    with_data = sorted(n for n, e in made["entries"].items() if any(e["counts"]))
    check([n for n, _, _ in entries] == with_data, "lowbit dat: entry names / order")
    check(chunks == made["chunk_count"], "lowbit dat: chunk count")
    check(dataset == made["datasets"][-1], "lowbit dat: dataset is the last one")
    for name, ncall, values in entries:
        e = made["entries"].get(name)
        if not e:
            continue
        want_ncall = (max(e["counts"]) + made["chunk_size"] - 1) // made["chunk_size"]
        check(ncall == want_ncall, f"lowbit dat: {name} ncall {ncall} != {want_ncall}")
        want = np.empty((e["n_mat"], e["n_per_row"]), dtype=np.float32)
        for m, c in enumerate(e["counts"]):
            want[m] = np.float32(ncall) if c == 0 else (e["sum_sq"][m] / c * ncall)
        check(same_bits(values, want.reshape(-1)), f"lowbit dat: {name} values")
    _, view = check_dump_matches_quantize(tool, path, "lowbit dat")
    for name, e in made["entries"].items():
        check(name in view and close(view[name], e["importance"], 5e-7),
              f"lowbit dat: quantize's importance of {name} is not lowbit's")
    print(f"lowbit legacy: {len(entries)} entries checked with struct")


def sample_stats(seed):
    """Sums and counts as llama-imatrix collects them: a dense weight, stacked experts with an
    unused expert, and a weight that got a single token."""
    rng = np.random.default_rng(seed)
    stats = {
        "blk.0.attn_output.weight": ((rng.random(24) * 50).astype(np.float32), [1024]),
        "blk.2.ffn_up_exps.weight": ((rng.random((3, 8)) * 9).astype(np.float32),
                                     [700, 0, 324]),
        "blk.1.attn_v.weight": ((rng.random(16) * 3 + 0.25).astype(np.float32), [512]),
        "output.weight": (np.array([0.5, 0.0, 2.0, 7.25], dtype=np.float32), [1]),
    }
    return stats


def check_llama_gguf(tool, tmp):
    stats = sample_stats(7)
    path = os.path.join(tmp, "llama.gguf")
    write_gguf_like_llama(path, stats, ["wiki.train.raw", "extra.txt"], 4, 512,
                          in_sum=("blk.1.attn_v.weight",))
    dump, view = check_dump_matches_quantize(tool, path, "llama gguf")
    check(dump["chunk_size"] == 512, "llama gguf: chunk_size")
    for name, (sums, counts) in stats.items():
        e = dump["entries"].get(name)
        if not check(e is not None, f"llama gguf: {name} missing"):
            continue
        check(e["n_mat"] == len(counts) and e["n_per_row"] * e["n_mat"] == np.size(sums),
              f"llama gguf: {name} shape")
        check(e["counts"] == list(counts), f"llama gguf: {name} counts")
        check(same_bits(e["sum_sq"].reshape(-1), np.asarray(sums).reshape(-1)),
              f"llama gguf: {name} sums")
    # No dataset at all (llama-imatrix run on --in-file inputs only).
    empty = os.path.join(tmp, "llama-no-dataset.gguf")
    write_gguf_like_llama(empty, stats, [], 4, 512)
    d = parse_dump(run(tool, "dump", empty))
    check(d["datasets"] == [] and len(d["entries"]) == len(stats), "llama gguf: no datasets")

    # Converted by lowbit: quantize sees the same values (exactly, for GGUF).
    out = os.path.join(tmp, "llama-via-lowbit.gguf")
    run(tool, "convert", path, out)
    v2, chunks, datasets = quantize_view(out)
    check(sorted(v2) == sorted(view) and all(same_bits(v2[n], view[n]) for n in view),
          "llama gguf -> lowbit gguf: quantize's values changed")
    check(chunks == 4 and datasets == ["wiki.train.raw", "extra.txt"],
          "llama gguf -> lowbit gguf: metadata")
    out = os.path.join(tmp, "llama-via-lowbit.dat")
    run(tool, "convert", path, out)
    v3, chunks, datasets = quantize_view(out)
    check(sorted(v3) == sorted(view) and all(close(v3[n], view[n], 5e-7) for n in view),
          "llama gguf -> lowbit dat: quantize's values changed")
    check(chunks == 4 and datasets == ["extra.txt"], "llama gguf -> lowbit dat: trailer")
    print(f"llama.cpp GGUF (GGUFWriter): {len(stats)} entries read by lowbit")


def check_llama_legacy(tool, tmp):
    stats = sample_stats(11)
    for trailer in (True, False):
        path = os.path.join(tmp, f"llama-{int(trailer)}.dat")
        write_legacy_like_llama(path, stats, 512, 9, "calib/wiki.txt", trailer=trailer)
        label = f"llama dat ({'with' if trailer else 'without'} trailer)"
        dump, view = check_dump_matches_quantize(tool, path, label)
        entries, _, _ = read_legacy(path)
        for name, ncall, values in entries:
            e = dump["entries"].get(name)
            if not check(e is not None, f"{label}: {name} missing"):
                continue
            check(e["n_mat"] == 1 and e["n_per_row"] == values.size, f"{label}: {name} shape")
            check(e["counts"] == [ncall], f"{label}: {name} counts {e['counts']} != [{ncall}]")
            check(same_bits(e["sum_sq"].reshape(-1), values), f"{label}: {name} values")
        check(dump["chunk_size"] == 0, f"{label}: chunk_size unknown")
        # lowbit's GGUF of a legacy file gives quantize exactly the same values, and its
        # legacy rewrite is the same file.
        out = os.path.join(tmp, f"llama-{int(trailer)}-via-lowbit.gguf")
        run(tool, "convert", path, out)
        v2, _, _ = quantize_view(out)
        check(sorted(v2) == sorted(view) and all(same_bits(v2[n], view[n]) for n in view),
              f"{label} -> lowbit gguf: quantize's values changed")
        if trailer:
            out = os.path.join(tmp, "llama-via-lowbit.dat")
            run(tool, "convert", path, out)
            check(open(out, "rb").read() == open(path, "rb").read(),
                  f"{label} -> lowbit dat: bytes differ")
    print(f"llama.cpp legacy (struct): {len(stats)} entries read by lowbit, with and without "
          "trailer")


def main():
    tool = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        check_lowbit_gguf(tool, tmp)
        check_lowbit_legacy(tool, tmp)
        check_llama_gguf(tool, tmp)
        check_llama_legacy(tool, tmp)
    print("imatrix oracle:", "failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
