#!/usr/bin/python3
"""PyTorch-Python peer of tessera's default language model, for bench/lm-vs-pytorch.sh.

The same network, optimizer, schedule and data pipeline as `tessera train --model llama` with its
defaults (src/tessera/models/llama.cpp, rotary.cpp, data/text_corpus.cpp, cli/options.cpp
apply_family_defaults), written the way a PyTorch user would: byte tokens of Debian's fortunes,
random windows of 64 bytes, batch 64; embedding 256 -> 128, 4 pre-norm decoder blocks (RMSNorm,
4-head causal attention with interleaved rotary embeddings, SwiGLU 320), final RMSNorm, untied
head; no biases; AdamW (lr 2e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every
parameter), gradient norm clipped to 1, 100 linear warm-up steps then cosine to 0.1 x lr.

Run with Debian's interpreter (python3-torch 1.13.1, the same libtorch as tessera):
  /usr/bin/python3 bench/lm_peer.py --steps 200 --threads 2
--precision bf16 runs the forward under torch.autocast("cpu", torch.bfloat16), as tessera's
--precision bf16; --device cuda runs on the GPU (a CUDA PyTorch), where --precision fp16 adds
torch.cuda.amp.GradScaler's dynamic loss scaling, as tessera's --precision fp16. It prints the tokens/s of the training steps (corpus loading and model building excluded, the
first step included, as in tessera's train_seconds) and the last step's loss.
"""
import argparse
import contextlib
import io
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, DIM, HEADS, DEPTH, MLP, SEQ, BATCH = 256, 128, 4, 4, 320, 64, 64
LR, BETAS, EPS, WEIGHT_DECAY, CLIP = 2e-3, (0.9, 0.999), 1e-8, 0.01, 1.0
WARMUP, MIN_LR_RATIO, ROTARY_BASE, NORM_EPS, INIT_STD = 100, 0.1, 10000.0, 1e-5, 0.02
CORPUS, VALIDATION_FRACTION = "/usr/share/games/fortunes", 0.05


# --- data: byte tokens of the corpus' training documents -------------------------------------
def mix_seed(seed, value):  # tessera/core/seeding.cpp (splitmix64)
    mask = (1 << 64) - 1
    z = (seed + 0x9E3779B97F4A7C15 * (value + 1)) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def documents(path):
    """Records of every regular file (no links, no *.dat / *.u8 index files, no hidden files), in
    path order, split on lines holding only `%`; blank records dropped."""
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                   if not name.startswith(".") and not name.endswith((".dat", ".u8")))
    for file in files:
        if os.path.islink(file) or not os.path.isfile(file):
            continue
        current = b""
        with open(file, "rb") as f:
            for line in io.BytesIO(f.read()):
                if line in (b"%\n", b"%", b"%\r\n"):
                    if current.strip(b" \t\r\n"):
                        yield current
                    current = b""
                else:
                    current += line
        if current.strip(b" \t\r\n"):
            yield current


def training_tokens(path):
    """uint8 tokens of the training split (tessera's split by document hash, blank line between
    documents)."""
    split_key = mix_seed(0, 0x73706C6974)
    train = [doc for i, doc in enumerate(documents(path))
             if (mix_seed(split_key, i) >> 11) * 2.0**-53 >= VALIDATION_FRACTION]
    return torch.frombuffer(bytearray(b"\n".join(train)), dtype=torch.uint8)


def random_batch(tokens, generator):
    starts = torch.randint(0, tokens.numel() - SEQ, (BATCH,), generator=generator)
    window = tokens[starts.unsqueeze(1) + torch.arange(SEQ + 1)].long()
    return window[:, :-1], window[:, 1:]


# --- model ------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * self.weight


def rotate(x, cos, sin):
    """Rotates each pair (x[2i], x[2i+1]) of the last dimension by the position's angle."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RMSNorm(DIM)
        self.q, self.k, self.v, self.proj = (nn.Linear(DIM, DIM, bias=False) for _ in range(4))

    def forward(self, x, cos, sin, future):
        b, t, _ = x.shape
        h = self.norm(x)
        split = lambda y: y.view(b, t, HEADS, DIM // HEADS).transpose(1, 2)  # [B, H, T, hd]
        q = rotate(split(self.q(h)), cos, sin) * (DIM // HEADS) ** -0.5
        k = rotate(split(self.k(h)), cos, sin)
        scores = (q @ k.transpose(-2, -1)).masked_fill(future, float("-inf"))
        mixed = torch.softmax(scores, -1) @ split(self.v(h))
        return self.proj(mixed.transpose(1, 2).reshape(b, t, DIM))


class SwiGLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RMSNorm(DIM)
        self.gate, self.up = nn.Linear(DIM, MLP, bias=False), nn.Linear(DIM, MLP, bias=False)
        self.down = nn.Linear(MLP, DIM, bias=False)

    def forward(self, x):
        h = self.norm(x)
        return self.down(F.silu(self.gate(h)) * self.up(h))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn, self.mlp = Attention(), SwiGLU()

    def forward(self, x, cos, sin, future):
        x = x + self.attn(x, cos, sin, future)
        return x + self.mlp(x)


class Llama(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = RMSNorm(DIM)
        self.out = nn.Linear(DIM, VOCAB, bias=False)
        hd = DIM // HEADS
        frequencies = ROTARY_BASE ** -(torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angles = torch.outer(torch.arange(SEQ, dtype=torch.float64), frequencies)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)
        self.register_buffer("future", torch.ones(SEQ, SEQ, dtype=torch.bool).triu(1),
                             persistent=False)
        with torch.no_grad():  # GPT-2's init, as tessera's (norm weights stay 1)
            for name, p in self.named_parameters():
                if not name.endswith("norm.weight"):
                    residual_out = name.endswith(("proj.weight", "down.weight"))
                    p.normal_(0.0, INIT_STD / math.sqrt(2 * DEPTH) if residual_out else INIT_STD)

    def forward(self, tokens):
        t = tokens.shape[1]
        cos, sin, future = self.cos[:t], self.sin[:t], self.future[:t, :t]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin, future)
        return self.out(self.norm(x))


def scheduled_lr(step, total_steps):  # tessera/train/schedule.cpp, cosine with warm-up
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = min(1.0, (step - WARMUP) / max(1, total_steps - WARMUP))
    floor = LR * MIN_LR_RATIO
    return floor + (LR - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def main():
    global SEQ, BATCH  # set from the flags; read by the model's tables and the batch sampler
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=SEQ, help="bytes per training window")
    parser.add_argument("--batch-size", type=int, default=BATCH, help="windows per step")
    parser.add_argument("--corpus", default=CORPUS)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="bf16/fp16: the forward under torch.autocast (fp16: CUDA only, "
                             "with GradScaler)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--param-count", action="store_true", help="print it and exit")
    args = parser.parse_args()
    SEQ, BATCH = args.seq_len, args.batch_size
    device = torch.device(args.device)
    if args.precision == "fp16" and device.type != "cuda":
        parser.error("--precision fp16 needs --device cuda")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = Llama().to(device)
    parameters = sum(p.numel() for p in model.parameters())
    if args.param_count:
        print(parameters)
        return
    tokens = training_tokens(args.corpus)
    print(f"peer: {parameters} parameters, {tokens.numel()} training bytes, "
          f"{args.threads} threads, torch {torch.__version__}", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS,
                                  weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(args.seed)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    autocast = (torch.autocast(device.type, dtype) if dtype is not None
                else contextlib.nullcontext())
    # torch.amp.GradScaler("cuda") from torch 2.3 on; Debian's 1.13 has only torch.cuda.amp's.
    scaler_class = getattr(torch.amp, "GradScaler", None)
    scaler = (scaler_class("cuda", enabled=args.precision == "fp16") if scaler_class is not None
              else torch.cuda.amp.GradScaler(enabled=args.precision == "fp16"))
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = scheduled_lr(step, args.steps)
        inputs, labels = (t.to(device) for t in random_batch(tokens, generator))
        optimizer.zero_grad()
        with autocast:
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        scaler.scale(loss).backward()
        loss_value = loss.item()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        scaler.step(optimizer)
        scaler.update()
    seconds = time.perf_counter() - start
    print(f"tokens_per_second {args.steps * BATCH * SEQ / seconds:.1f}")
    print(f"final_loss {loss_value:.4f}")


if __name__ == "__main__":
    main()
