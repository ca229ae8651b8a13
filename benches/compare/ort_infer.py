"""Inference of the digits MLP and CNN through ONNX Runtime's Python API, printing the same
lines as `cargo run --release --example bench -- infer`:

    infer model=mlp batch=1 threads=1 median_us=... system=onnxruntime

The models (as examples/bench_infer/mod.rs builds them in tapegrad):
  mlp: 64-128-10, ReLU (the dropout of examples/digits.rs is off at inference);
  cnn: conv 1->16 k3 pad 1, ReLU, conv 16->32 k3 pad 1, ReLU, max-pool 2,
       conv 32->64 k3 pad 1, ReLU, max-pool 2, flatten 256, linear 10 (dropout off).
Weights: PyTorch's default initialisation, seeded (torch.manual_seed(42)); the time does
not depend on their values. Each is exported with torch.onnx.export (batch axis dynamic)
to a temporary directory and run by an InferenceSession (CPUExecutionProvider,
intra_op_num_threads 1 and 2, inter_op 1, each thread count in a child process). The call
timed is `sess.run(None, {"x": array})` at batch 1 and 64 (its result is the logits), the
median over about a second of calls (timing.py). Before timing, ONNX Runtime's logits are
checked against PyTorch's.

Run (not part of CI; PyTorch, onnx, onnxscript and onnxruntime in a venv outside the repo):
    /tmp/torchvenv/bin/python benches/compare/ort_infer.py [threads]
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile

from timing import median_seconds

BOUND = 64
BATCHES = (1, 64)


def models():
    from torch import nn

    mlp = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(256, 10),
    )
    return {"mlp": (mlp, (64,)), "cnn": (cnn, (1, 8, 8))}


def run_one(threads):
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.manual_seed(42)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(42)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, item) in models().items():
            model.eval()
            path = os.path.join(tmp, f"{name}.onnx")
            example = torch.zeros((2, *item))
            # the exporter's progress report, not ours
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    model, (example,), path,
                    input_names=["x"], output_names=["logits"],
                    dynamic_shapes=({0: torch.export.Dim("batch", max=BOUND)},),
                )
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            data = rng.uniform(-1.0, 1.0, (BOUND, *item)).astype(np.float32)
            with torch.no_grad():
                want = model(torch.from_numpy(data)).numpy()
            got = sess.run(None, {"x": data})[0]
            if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
                raise SystemExit(
                    f"{name}: ONNX Runtime's logits differ from PyTorch's by up to "
                    f"{np.abs(got - want).max()}"
                )
            for rows in BATCHES:
                x = np.ascontiguousarray(data[:rows])
                median = median_seconds(lambda: sess.run(None, {"x": x}))
                print(
                    f"infer model={name} batch={rows} threads={threads} "
                    f"median_us={median * 1e6:.1f} system=onnxruntime",
                    flush=True,
                )


if __name__ == "__main__":
    if len(sys.argv) == 2:
        run_one(int(sys.argv[1]))
    else:
        for threads in (1, 2):
            subprocess.run([sys.executable, __file__, str(threads)], check=True)
