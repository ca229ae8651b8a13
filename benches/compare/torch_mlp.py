"""The mlp-step benchmark of DESIGN.md in PyTorch eager, printing the same lines as
`cargo run --release --example bench`:

    mlp-step cfg=S threads=1 median_us=... gflops=... peak_rss_kb=...

One step = forward + mean softmax cross-entropy + backward + plain SGD (lr 0.01) update,
f32, fixed random inputs and labels. Each configuration and thread count runs in a child
process of its own, so its peak RSS is its own.

Run (not part of CI; PyTorch is installed from PyPI into a venv outside the repo):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch
    /tmp/torchvenv/bin/python benches/compare/torch_mlp.py
"""
import subprocess
import sys

from timing import median_seconds, peak_rss_kb

CONFIGS = {
    "S": ([64, 32, 10], 32),
    "M": ([784, 128, 10], 64),
    "L": ([784, 1024, 1024, 10], 256),
}


def flops(sizes, batch):
    layers = [a * b for a, b in zip(sizes, sizes[1:])]
    return 2.0 * batch * (3.0 * sum(layers) - sizes[0] * sizes[1])


def run_one(name, threads):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(42)
    sizes, batch = CONFIGS[name]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(batch, sizes[0]) * 2 - 1
    y = torch.randint(0, sizes[-1], (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    median = median_seconds(step)
    peak = peak_rss_kb()
    print(
        f"mlp-step cfg={name} threads={threads} median_us={median * 1e6:.1f} "
        f"gflops={flops(sizes, batch) / median / 1e9:.2f} peak_rss_kb={peak}",
        flush=True,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        run_one(sys.argv[1], int(sys.argv[2]))
    else:
        for cfg in CONFIGS:
            for threads in (1, 2):
                subprocess.run([sys.executable, __file__, cfg, str(threads)], check=True)
