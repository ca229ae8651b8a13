"""The Python side of serve/bench/load.sh: the same /predict API on FastAPI + uvicorn +
PyTorch, with the model of the same safetensors file (the one `serve` loads).

    WEIGHTS=target/digits.safetensors MODEL=mlp \
        uvicorn torch_server:app --workers 2 --port 8001 --no-access-log

The file holds tapegrad's parameters (a Linear's weight as [in, out], PyTorch's
transposed; convolutions as PyTorch stores them) and the buffers input.mean and input.std
of the standardisation the training used: x = (pixels / 16 - mean) / std.
"""

import math
import os

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from safetensors.torch import load_file
from torch import nn

# One thread per worker process: the workers are the parallelism, as `serve`'s are.
torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))

PIXELS = 64
MAX_BATCH = 32


def build(kind: str) -> nn.Module:
    if kind == "mlp":
        # mlp.0 and mlp.3: dropout is module 2, as in tapegrad's MlpBuilder
        return nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)
        )
    if kind == "cnn":

        class Cnn(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
                self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
                self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
                self.fc = nn.Linear(256, 10)

            def forward(self, x):
                h = torch.relu(self.conv2(torch.relu(self.conv1(x))))
                h = torch.max_pool2d(h, 2)
                h = torch.max_pool2d(torch.relu(self.conv3(h)), 2).flatten(1)
                return self.fc(h)

        return Cnn()
    raise SystemExit(f"MODEL={kind!r}: expected mlp or cnn")


KIND = os.environ.get("MODEL", "mlp")
tensors = load_file(os.environ["WEIGHTS"])
MEAN = tensors.pop("input.mean")
STD = tensors.pop("input.std")
state = {}
for name, t in tensors.items():
    name = name.removeprefix("mlp.")
    # tapegrad's Linear weights are [in, out]; PyTorch's are [out, in]
    state[name] = t.t().contiguous() if t.dim() == 2 else t
model = build(KIND)
model.load_state_dict(state)
model.eval()

app = FastAPI()


def bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def image(v, what: str):
    if not isinstance(v, list) or len(v) != PIXELS:
        n = len(v) if isinstance(v, list) else "no list"
        return None, f"{what}: expected {PIXELS} numbers, got {n}"
    for i, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return None, f"{what}[{i}]: {x!r} is not a finite number"
    return v, None


@app.post("/predict")
async def predict(request: Request):
    try:
        body = await request.json()
    except ValueError as e:
        return bad(f"invalid JSON: {e}")
    if not isinstance(body, dict) or (("pixels" in body) == ("batch" in body)):
        return bad('expected {"pixels": [64 numbers]} or {"batch": [[64 numbers], ...]}')
    batch = "batch" in body
    rows = body["batch"] if batch else [body["pixels"]]
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH:
        return bad(f"batch: expected 1 to {MAX_BATCH} rows")
    for i, r in enumerate(rows):
        _, err = image(r, f"batch[{i}]" if batch else "pixels")
        if err:
            return bad(err)
    x = (torch.tensor(rows, dtype=torch.float32) / 16.0 - MEAN) / STD
    if KIND == "cnn":
        x = x.reshape(-1, 1, 8, 8)
    with torch.inference_mode():
        logits = model(x)
        probs = torch.softmax(logits, dim=-1)
    answers = [
        {"class": int(c), "probs": p}
        for c, p in zip(logits.argmax(-1).tolist(), probs.tolist())
    ]
    return answers[0] if not batch else {"predictions": answers}


@app.get("/healthz")
async def healthz():
    return {"status": "ok", "model": KIND}
