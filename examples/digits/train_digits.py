"""The main job: a small CNN learns the handwritten digits that scikit-learn ships (1,797 images of 8×8, no
download), with its normalization layers in three arms trained from the same initial weights on the same
batches — PyTorch's nn.BatchNorm2d, bnnative.torch.BatchNorm2d and bnnative.torch.BatchRenorm2d — in two regimes:

  shuffled   ordinary mini-batches of 32, shuffled;
  micro      micro-batches of 4 examples of one class each, the regime Batch Renormalization was made for:
             the batch statistics of such batches are far from the population's, and inference, which uses
             the running statistics, pays for it.

Test accuracy is measured in inference mode (running statistics) after every epoch. The run prints a progress
line per epoch and a final table, writes artifacts/demo/accuracy.png and artifacts/demo/report.md, and checks that
the bnnative BatchNorm arm tracks PyTorch's (losses of the first steps, final accuracy). Batch Renormalization
relaxes r_max from 1 to 3 and d_max from 0 to 5 after a warm-up, as the paper does (scaled to this run's steps).

  python3 examples/digits/train_digits.py            # the full run: 3 seeds, about a minute on 2 cores
  python3 examples/digits/train_digits.py --quick    # a short run that the test command uses
"""
import argparse
import copy
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if os.path.isdir(os.path.join(ROOT, "bindings", "python", "bnnative")):
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))  # the checkout's package, unless installed
import bnnative  # noqa: E402
import bnnative.torch as bt  # noqa: E402

MICRO = 4  # examples per micro-batch
REGIMES = ("shuffled", "micro")
ARMS = ("torch BatchNorm2d", "bnnative BatchNorm2d", "bnnative BatchRenorm2d")


def load_digits(seed):
    """The digits as (N, 1, 8, 8) float32 in [0, 1], split 80/20 with the classes balanced."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split
    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(images, digits.target, test_size=0.2, random_state=seed,
                                                        stratify=digits.target)
    return (torch.from_numpy(x_train), torch.from_numpy(y_train).long(),
            torch.from_numpy(x_test), torch.from_numpy(y_test).long())


def network(norm):
    """conv → norm → ReLU ×3, with pooling, and a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), norm(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), norm(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), norm(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def batches(regime, labels, epochs, generator):
    """Index batches for every epoch, the same for every arm."""
    plan = []
    for _ in range(epochs):
        if regime == "shuffled":
            order = torch.randperm(len(labels), generator=generator)
            plan.append([order[i:i + 32] for i in range(0, len(order) - 31, 32)])
        else:  # micro-batches of 4 examples of one class: what a class-sorted stream of data gives
            epoch = []
            for c in range(10):
                members = torch.nonzero(labels == c).flatten()
                members = members[torch.randperm(len(members), generator=generator)]
                epoch += [members[i:i + MICRO] for i in range(0, len(members) - MICRO + 1, MICRO)]
            order = torch.randperm(len(epoch), generator=generator)
            plan.append([epoch[i] for i in order])
    return plan


def renorm_limits(step, steps):
    """Batch Renormalization's schedule (Ioffe 2017, §4): BatchNorm (r_max = 1, d_max = 0) for the first tenth,
    then r_max relaxed to 3 and d_max to 5 by half of the run."""
    warm, relaxed = 0.1 * steps, 0.5 * steps
    t = min(1.0, max(0.0, (step - warm) / (relaxed - warm)))
    return 1.0 + 2.0 * t, 5.0 * t


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).sum().item()
    model.train()
    return correct / len(y)


class Progress:
    """One line per epoch: a tqdm bar on a terminal, plain lines otherwise."""

    def __init__(self, total, title):
        self.bar = None
        if sys.stdout.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=title, unit="epoch", leave=True)
            except ImportError:
                pass
        self.title = title

    def update(self, epoch, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.update(1)
        else:
            print(f"{self.title}: epoch {epoch} {text}", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train(regime, data, epochs, seed, learning_rate):
    """Trains the three arms on the same batches; returns per arm the losses, accuracies and seconds per epoch."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    initial = network(nn.BatchNorm2d).state_dict()
    plan = batches(regime, y_train, epochs, torch.Generator().manual_seed(seed + 1))
    steps = sum(len(epoch) for epoch in plan)
    norms = {ARMS[0]: nn.BatchNorm2d, ARMS[1]: bt.BatchNorm2d, ARMS[2]: bt.BatchRenorm2d}
    results = {}
    for arm, norm in norms.items():
        model = network(norm)
        model.load_state_dict(initial)  # BatchRenorm2d keeps BatchNorm's state
        optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)
        renorms = [m for m in model.modules() if isinstance(m, bt.BatchRenorm2d)]
        losses, accuracies, seconds = [], [], []
        progress = Progress(epochs, f"{regime:8} {arm}")
        step = 0
        for epoch, batch_list in enumerate(plan, start=1):
            start = time.perf_counter()
            for indices in batch_list:
                for m in renorms:
                    m.rmax, m.dmax = renorm_limits(step, steps)
                loss = F.cross_entropy(model(x_train[indices]), y_train[indices])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                step += 1
            seconds.append(time.perf_counter() - start)
            accuracies.append(accuracy(model, x_test, y_test))
            progress.update(epoch, f"loss {np.mean(losses[-len(batch_list):]):.3f}  test accuracy {accuracies[-1]:.3f}")
        progress.close()
        results[arm] = dict(losses=losses, accuracies=accuracies, seconds=seconds, model=model)
    return results


def normalization_seconds(models, x, repeats):
    """Seconds one forward and backward of every normalization layer of each arm's model takes on the inputs
    that layer sees for a batch x, timed in alternation (A B C A B C ...), so the machine's noise hits all alike."""
    cases = {}
    for arm, trained in models.items():
        model = copy.deepcopy(trained)  # timing updates running statistics; the trained model stays as it was
        pairs = []
        def record(module, given, output):
            pairs.append((module, given[0].detach()))
        hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        model.train()
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        cases[arm] = pairs
    totals = {arm: [] for arm in models}
    for _ in range(repeats):
        for arm, pairs in cases.items():
            start = time.perf_counter()
            for layer, z in pairs:
                z = z.clone().requires_grad_()
                layer(z).sum().backward()
            totals[arm].append(time.perf_counter() - start)
    return {arm: float(np.median(t)) for arm, t in totals.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (the test command's)")
    parser.add_argument("--out", default=os.path.join(ROOT, "artifacts", "demo"), help="where the plot and report go")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 3, 1 with --quick)")
    args = parser.parse_args()
    seeds = list(range(args.seed, args.seed + (args.seeds or (1 if args.quick else 3))))
    epochs = {"shuffled": 2, "micro": 1} if args.quick else {"shuffled": 15, "micro": 8}
    learning_rate = {"shuffled": 0.05, "micro": 0.01}
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"bnnative {bnnative.__version__} ({bnnative.isa()} kernels, {bnnative.get_num_threads()} threads), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")

    # runs[regime][arm]: one result per seed; each seed draws its own split, initial weights and batches.
    runs = {regime: {arm: [] for arm in ARMS} for regime in REGIMES}
    timing = {}
    for seed in seeds:
        data = load_digits(seed)
        print(f"seed {seed}: {len(data[1])} training and {len(data[3])} test images of 8×8")
        for regime in REGIMES:
            for arm, result in train(regime, data, epochs[regime], seed, learning_rate[regime]).items():
                runs[regime][arm].append(result)
            if seed == seeds[0]:
                batch = data[0][:32] if regime == "shuffled" else data[0][:MICRO]
                timing[regime] = normalization_seconds({arm: r[0]["model"] for arm, r in runs[regime].items()},
                                                       batch, repeats=30 if args.quick else 200)

    checks = tracking_checks(runs)
    table = ["| regime | arm | test accuracy, final (mean of seeds) | lowest–highest seed | seconds per epoch | "
             "normalization per batch (fwd+bwd) |", "|---|---|---:|---:|---:|---:|"]
    for regime in REGIMES:
        for arm in ARMS:
            final = [r["accuracies"][-1] for r in runs[regime][arm]]
            table.append(f"| {regime} | {arm} | {np.mean(final):.3f} | {min(final):.3f}–{max(final):.3f} | "
                         f"{np.mean([np.mean(r['seconds']) for r in runs[regime][arm]]):.2f} | "
                         f"{timing[regime][arm] * 1e3:.2f} ms |")
    print()
    print("\n".join(table))
    print()
    for line in checks["lines"]:
        print(line)
    verdict = renormalization_verdict(runs) + (" — a --quick run, too short to say anything of the method" if args.quick else "")
    print(verdict)

    plot(runs, os.path.join(args.out, "accuracy.png"))
    report(args, seeds, table, checks["lines"], verdict, os.path.join(args.out, "report.md"))
    print(f"wrote {os.path.join(args.out, 'accuracy.png')} and {os.path.join(args.out, 'report.md')}")
    return 0 if checks["ok"] else 1


def tracking_checks(runs):
    """The bnnative BatchNorm arm must track PyTorch's: the same computation, float32 rounding apart.

    SGD amplifies rounding differences step after step (about 1e-7 at first, 1e-3 some 40 steps later), so the losses
    are compared over the first 20 steps of every seed and regime. Final accuracies are compared (mean of the seeds,
    within 3 points: 11 of the 360 test images) on shuffled batches only: on micro-batches BatchNorm's own accuracy
    swings by several points from one epoch to the next, so two runs that part after step 40 by rounding alone end
    apart by chance, and the report shows them side by side instead."""
    ok, lines = True, []
    for regime in REGIMES:
        torch_runs, ours = runs[regime][ARMS[0]], runs[regime][ARMS[1]]
        first = min(20, len(torch_runs[0]["losses"]))
        loss_gap = max(abs(p - q) / (1 + abs(p)) for a, b in zip(torch_runs, ours)
                       for p, q in zip(a["losses"][:first], b["losses"][:first]))
        accuracy_gap = abs(np.mean([r["accuracies"][-1] for r in torch_runs]) - np.mean([r["accuracies"][-1] for r in ours]))
        good = loss_gap <= 1e-4 and (regime != "shuffled" or accuracy_gap <= 0.03)
        ok &= good
        compared = "" if regime == "shuffled" else " (reported, not checked)"
        lines.append(f"{regime}: bnnative BatchNorm2d {'tracks' if good else 'does NOT track'} torch BatchNorm2d "
                     f"(largest relative loss difference over the first {first} steps {loss_gap:.1e}; "
                     f"final accuracies {accuracy_gap:.3f} apart{compared})")
    return dict(ok=ok, lines=lines)


def renormalization_verdict(runs):
    """What the micro-batch regime says of Batch Renormalization against Batch Normalization (bnnative's arms, same
    batches): 'better' only if it wins in every seed by more than one test image on average, as the data says."""
    bn = np.array([r["accuracies"][-1] for r in runs["micro"][ARMS[1]]])
    brn = np.array([r["accuracies"][-1] for r in runs["micro"][ARMS[2]]])
    shuffled = np.mean([r["accuracies"][-1] for r in runs["shuffled"][ARMS[1]]])
    gap = float(np.mean(brn - bn))
    if np.all(brn > bn) and gap > 1 / 360:
        word = "beats"
    elif np.all(brn < bn) and gap < -1 / 360:
        word = "loses to"
    else:
        word = "does not clearly differ from"
    return (f"micro-batches: Batch Renormalization {word} Batch Normalization: {np.mean(brn):.3f} against "
            f"{np.mean(bn):.3f} test accuracy in inference mode (per seed: "
            f"{', '.join(f'{a:.3f}/{b:.3f}' for a, b in zip(brn, bn))}); BatchNorm reaches {shuffled:.3f} on shuffled batches")


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    styles = {ARMS[0]: dict(color="tab:gray", linewidth=3, alpha=0.6), ARMS[1]: dict(color="tab:blue", linestyle="--"),
              ARMS[2]: dict(color="tab:orange")}
    titles = {"shuffled": "shuffled batches of 32", "micro": f"micro-batches of {MICRO}, one class each"}
    for axis, regime in zip(axes, REGIMES):
        for arm, results in runs[regime].items():
            curves = np.array([r["accuracies"] for r in results])
            epochs = range(1, curves.shape[1] + 1)
            axis.plot(epochs, curves.mean(0), label=arm, **styles[arm])
            if len(results) > 1:
                axis.fill_between(epochs, curves.min(0), curves.max(0), color=styles[arm]["color"], alpha=0.12)
        axis.set_title(titles[regime])
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    seeds = len(next(iter(runs["micro"].values())))
    axes[0].set_ylabel("test accuracy (inference mode)")
    axes[1].legend(loc="lower right")
    figure.suptitle("digits (scikit-learn), small CNN, SGD — same initial weights and batches in every arm"
                    + (f"; mean of {seeds} seeds, band: lowest to highest" if seeds > 1 else ""))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(args, seeds, table, checks, verdict, path):
    command = "python3 examples/digits/train_digits.py" + (" --quick" if args.quick else "")
    lines = ["# Digits with BatchNorm and Batch Renormalization", "",
             f"Run: `{command}` (seeds {', '.join(map(str, seeds))}); bnnative {bnnative.__version__} on "
             f"{bnnative.isa()} kernels, torch {torch.__version__}.", "",
             "A small CNN (three conv → norm → ReLU blocks, two max-pools, a linear head) trained with SGD from the same "
             "initial weights on the same batches in every arm; each seed draws its own train/test split, weights and "
             f"batches. Micro-batches hold {MICRO} examples of one class. Test accuracy is taken in inference mode, "
             "with the running statistics. Batch Renormalization relaxes r_max 1 → 3 and d_max 0 → 5 after a warm-up "
             "of a tenth of the steps, reaching them at half of the run. Normalization time is one forward and "
             "backward of all norm layers on a batch's inputs (first seed's models), timed in alternation across the "
             "arms.", "", *table, "", "![test accuracy by epoch](accuracy.png)", ""]
    lines += [f"- {line}." for line in checks + [verdict]]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
