#!/usr/bin/python3
"""benchmarks/report.md and benchmarks/report.png from the peer harness's results (bench.sh runs it):
    /usr/bin/python3 tools/bench_report.py RESULTS [RESULTS-BIG]
RESULTS holds normbench's latest.json (bandwidth, oneDNN, bnnative) and torch_bench's torch-malloc-tuned.json
(PyTorch with tuned malloc, the fairer bar); RESULTS-BIG the same for the --big cases. The table gives, per case and
thread count, each backend's median time and GB/s and the ratio against the faster peer, each peer against bnnative
timed beside it (oneDNN in normbench, PyTorch in torch_bench): min(t(oneDNN)/t(bnnative), t(PyTorch)/t(bnnative beside
PyTorch)), > 1: bnnative faster;
the chart, GB/s per case for bnnative, oneDNN, PyTorch and the copy limit, at 1 and at 2 threads."""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "benchmarks")


def load(directory, name):
    path = os.path.join(directory, name)
    return json.load(open(path)) if os.path.exists(path) else None


def rows_of(directory):
    """{(case, op, layout, threads): {backend: result}} and the copy limit per thread count."""
    rows, limits, reads = {}, {}, {}
    normbench, torch = load(directory, "latest.json"), load(directory, "torch-malloc-tuned.json")
    for document in (normbench, torch):
        for r in (document or {}).get("results", []):
            # bnnative is timed beside oneDNN in normbench and beside PyTorch in torch_bench: each peer is compared
            # with the bnnative timing taken in the same run, on the same buffers.
            backend = "bnnative-torch" if r["backend"] == "bnnative" and document is torch else r["backend"]
            rows.setdefault((r["case"], r["op"], r["layout"], r["threads"]), {})[backend] = r
    for b in (normbench or {}).get("bandwidth", []):
        limits[b["threads"]] = b["limit_gbs"]
        reads[b["threads"]] = b["read_gbs_median"]
    return rows, limits, reads, normbench


# Beyond any cache a pass over a tensor is a pass over memory. A training forward must see all of x before it can
# write any y (the statistics come first), so x is read twice; a backward must have its sums over all of x and dy
# before any dx, so both are read twice. LayerNorm's rows and inference need one pass. A first pass only reads, and on
# these machines reading alone moves fewer bytes a second than a copy (one core keeps only so many misses in flight;
# a copy's non-temporal stores need none): the harness measures both rates, and the ceiling takes each pass at its own.
# (tensors read by passes that only read, tensors read or written by passes that also write, tensors the harness
# credits as its minimum bytes, what they are)
PASSES = {
    "bn-fwd-train": (1, 2, 2, "x read for the statistics, then read again and y written"),
    "brn-fwd-train": (1, 2, 2, "as BatchNorm's"),
    "bn-bwd": (2, 3, 3, "x and dy read for the sums, then read again and dx written"),
    "brn-bwd": (2, 3, 3, "as BatchNorm's"),
    "bn-fwd-infer": (0, 2, 2, "x read, y written"),
    "ln-fwd": (0, 2, 2, "each row's statistics and map from cache: x read, y written"),
    "ln-bwd": (0, 3, 3, "each row's sums and dx from cache: x and dy read, dx written"),
}


def ceiling(op, copy_gbs, read_gbs):
    """The best fraction of the copy limit (in %) the op's passes allow: reading passes at the read rate, the others at copy's."""
    reads, mixed, minimum, _ = PASSES[op]
    return 100.0 * (minimum / copy_gbs) / (reads / read_gbs + mixed / copy_gbs)


def ok(r):
    return r is not None and r.get("status") == "ok"


def main():
    directories = sys.argv[1:]
    if not directories:
        sys.exit(__doc__)
    table, limits, read_limits, header, beyond = {}, {}, {}, None, set()
    for i, directory in enumerate(directories):
        rows, limit, read_limit, normbench = rows_of(directory)
        table.update(rows)
        if i > 0:  # the --big cases: tensors many times the last-level cache
            beyond.update(rows)
        for threads, gbs in limit.items():
            limits[(i > 0, threads)] = gbs
        for threads, gbs in read_limit.items():
            read_limits[(i > 0, threads)] = gbs
        header = header or normbench
    lines = ["# Speed against the peers (SPEC §5)", "",
             f"From `./bench.sh` ({header['timestamp']}): CPU {header['machine']['cpu']}, {header['machine']['processors']} processors. "
             "Medians of calls alternated in blocks of 8 on the same buffers; GB/s = minimum bytes / median time; "
             "% = of the copy limit at that thread count (measured on 256 MiB arrays, 1 GiB for the big cases). "
             "Ratio = against the faster peer, each peer against bnnative timed beside it in the same run: "
             "min(t(oneDNN) / t(bnnative), t(PyTorch) / t(bnnative beside PyTorch)); above 1, bnnative is faster. "
             "bnnative ms and GB/s are normbench's (beside oneDNN).", "",
             "| case | op | layout | thr | bnnative ms | GB/s | % copy | oneDNN ms | PyTorch ms | bnnative ms beside PyTorch | ratio |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ratios, mixed = [], []
    for key in sorted(table, key=lambda k: (k[3], k[0], k[1], k[2])):
        case, op, layout, threads = key
        by = table[key]
        bn, dnnl, torch, bn_torch = by.get("bnnative"), by.get("onednn"), by.get("torch"), by.get("bnnative-torch")
        pairs = [(peer, mine) for peer, mine in ((dnnl, bn), (torch, bn_torch)) if ok(peer) and ok(mine)]
        ratio = min(peer["median_ms"] / mine["median_ms"] for peer, mine in pairs) if pairs else None
        if ratio:
            ratios.append(ratio)
        peers = [r["median_ms"] for r in (dnnl, torch) if ok(r)]
        if ok(bn) and peers:  # the ratio across runs, as earlier reports gave it
            mixed.append(min(peers) / bn["median_ms"])
        cell = lambda r: f"{r['median_ms']:.3f}" if ok(r) else (r["status"][:24] if r else "")  # noqa: E731
        lines.append(f"| {case} | {op} | {layout} | {threads} | {cell(bn)} | {bn['gbs']:.1f} | {bn['pct_of_copy']:.0f}% | "
                     f"{cell(dnnl)} | {cell(torch)} | {cell(bn_torch)} | {ratio:.2f} |" if ok(bn) and ratio
                     else f"| {case} | {op} | {layout} | {threads} | {cell(bn)} | | | {cell(dnnl)} | {cell(torch)} | {cell(bn_torch)} | |")
    if ratios:
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        below = sum(1 for r in ratios if r < 1)
        summary = [f"**{len(ratios)} rows: geometric mean of the ratios {geomean:.2f}; {below} below 1.0.**"]
        if mixed:
            summary.append(f"(Against the faster peer's time with normbench's bnnative time for both peers, as reports before "
                           f"this one counted, across two runs: geometric mean {math.exp(sum(map(math.log, mixed)) / len(mixed)):.2f}, "
                           f"{sum(1 for r in mixed if r < 1)} below 1.0.)")
        lines[2:2] = summary + [""]
    lines += ["", "Copy limits (GB/s): " + ", ".join(f"{'big ' if big else ''}{t} thread{'s' if t > 1 else ''} {g:.1f}"
                                               for (big, t), g in sorted(limits.items())), "",
              "![GB/s per case, 1 and 2 threads](report.png)", ""]
    big = sorted((k for k in beyond if ok(table[k].get("bnnative")) and k[1] in PASSES),
                 key=lambda k: (k[0], k[1], k[2], k[3]))
    if big:
        lines += ["## Beyond any cache: the fraction of the copy limit, and what bounds it", "",
                  "In the --big cases the tensors are many times the last-level cache, so each pass over one moves it through memory. "
                  "GB/s counts the minimum bytes (each input read once, each output written once); a training call cannot "
                  "do that, because it needs statistics (or sums) over the whole tensor before its first output, so its first "
                  "pass only reads. The harness measures that rate too (a read-only sum; copy limit / read rate below), and on "
                  "this machine reading alone moves fewer bytes a second than a copy. The ceiling is the fraction of the copy "
                  "limit the op's passes allow with each at its measured rate: reading passes at the read rate, the rest at the "
                  "copy limit's. It is a guide, not a wall: the rates are medians of a bandwidth test taken at another moment of a "
                  "shared machine, a pass that reads two tensors and writes one is not a copy's one for one, and NCHW BatchNorm "
                  "reads a task's channels (up to four slabs of N·H·W values) again right after its first pass, partly from the "
                  "last-level cache; a row above 100% of its ceiling ran at the machine's limit.", "",
                  "| case | op | layout | thr | % copy | % copy beside PyTorch | passes: only reading + also writing / minimum | copy / read GB/s | ceiling | of ceiling |",
                  "|---|---|---|---:|---:|---:|---|---:|---:|---:|"]
        for key in big:
            case, op, layout, threads = key
            reads, mixed, minimum, what = PASSES[op]
            copy_gbs, read_gbs = limits[(True, threads)], read_limits[(True, threads)]
            bound = ceiling(op, copy_gbs, read_gbs)
            mine, beside = table[key]["bnnative"], table[key].get("bnnative-torch")
            best = max(mine["pct_of_copy"], beside["pct_of_copy"] if ok(beside) else 0)
            lines.append(f"| {case} | {op} | {layout} | {threads} | {mine['pct_of_copy']:.0f}% | "
                         f"{beside['pct_of_copy']:.0f}% | " if ok(beside) else f"| {case} | {op} | {layout} | {threads} | {mine['pct_of_copy']:.0f}% | | ")
            lines[-1] += (f"{reads} + {mixed} / {minimum}: {what} | {copy_gbs:.1f} / {read_gbs:.1f} | {bound:.0f}% | "
                          f"{100 * best / bound:.0f}% |")
        lines.append("")
    split = os.path.join(OUT, "split-overhead.md")  # benchmarks/split_overhead.py, which ./bench.sh runs first
    if os.path.exists(split):
        with open(split) as f:
            lines += ["## Synchronized BatchNorm: the split path against the fused call", ""] + f.read().splitlines()[2:] + [""]
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write("\n".join(lines))

    thread_counts = sorted({k[3] for k in table})
    figure, axes = plt.subplots(len(thread_counts), 1, figsize=(14, 4.5 * len(thread_counts)), squeeze=False)
    for axis, threads in zip(axes[:, 0], thread_counts):
        keys = sorted((k for k in table if k[3] == threads), key=lambda k: (k[0], k[1], k[2]))
        xs = range(len(keys))
        for offset, (backend, label, color) in enumerate([("bnnative", "bnnative", "tab:blue"), ("onednn", "oneDNN 2.6", "tab:orange"),
                                                          ("torch", "PyTorch 1.13", "tab:green")]):
            values = [table[k][backend]["gbs"] if ok(table[k].get(backend)) else 0 for k in keys]
            axis.bar([x + (offset - 1) * 0.27 for x in xs], values, width=0.27, label=label, color=color)
        for big in (False, True):
            if (big, threads) in limits:
                axis.axhline(limits[(big, threads)], color="gray" if not big else "black", linestyle="--",
                             label=f"copy limit{' (1 GiB arrays)' if big else ''}")
        axis.set_xticks(list(xs))
        axis.set_xticklabels([f"{k[0]}\n{k[1]} {k[2]}" for k in keys], rotation=60, ha="right", fontsize=7)
        axis.set_ylabel("GB/s")
        axis.set_title(f"{threads} thread{'s' if threads > 1 else ''}")
        axis.legend(fontsize=8, ncol=5)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(OUT, "report.png"), dpi=110)
    print(f"wrote {os.path.join(OUT, 'report.md')} and report.png ({len(table)} rows)")


if __name__ == "__main__":
    main()
