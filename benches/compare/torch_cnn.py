"""The cnn-step benchmark in PyTorch eager, printing the same lines as
`cargo run --release --example bench -- cnn`:

    cnn-step cfg=lenet threads=1 median_us=... peak_rss_kb=...

One step = LeNet-5 forward on random 1x28x28 images (batch 64) + mean softmax
cross-entropy + backward + plain SGD (lr 0.01) update, f32. Each thread count runs in a
child process of its own, so its peak RSS is its own.

Run (not part of CI; PyTorch in a venv outside the repo, see torch_mlp.py):
    /tmp/torchvenv/bin/python benches/compare/torch_cnn.py
"""
import subprocess
import sys

from timing import median_seconds, peak_rss_kb

BATCH = 64


def run_one(cfg, threads):
    import torch
    from torch import nn

    assert cfg == "lenet"
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (BATCH,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    median = median_seconds(step)
    peak = peak_rss_kb()
    print(
        f"cnn-step cfg={cfg} threads={threads} median_us={median * 1e6:.1f} "
        f"peak_rss_kb={peak}",
        flush=True,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3:
        run_one(sys.argv[1], int(sys.argv[2]))
    else:
        for threads in (1, 2):
            subprocess.run([sys.executable, __file__, "lenet", str(threads)], check=True)
