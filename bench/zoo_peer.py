#!/usr/bin/python3
"""PyTorch-Python peers of tessera's image models, for bench/vs-pytorch.sh.

The same networks as `tessera train --model mlp|resnet|vit` (src/tessera/models/: mlp.cpp,
resnet.cpp + conv_blocks.cpp, vit.cpp + vit_layers.cpp + attention.cpp), written the way a PyTorch
user would, trained with the same optimizer (Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8) and batch
on random inputs of the same shape (tessera's `--data synthetic`), optionally under
torch.autocast("cpu", torch.bfloat16). Only throughput is compared; the data are noise.

  /usr/bin/python3 bench/zoo_peer.py --model mlp --steps 200 --threads 2 [--precision bf16]

It prints the samples/s of the training steps (model building excluded, the first step
included, as in tessera's train_seconds) and the last step's loss. The language model's peer is
bench/lm_peer.py.
"""
import argparse
import contextlib
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(shape, classes, hidden=(1024,) * 5):
    layers, width = [nn.Flatten()], shape[0] * shape[1] * shape[2]
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def conv(cin, cout, kernel, stride):
    c = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
    nn.init.kaiming_normal_(c.weight, mode="fan_out", nonlinearity="relu")
    return c


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, cout, 3, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv(cout, cout, 3, 1), nn.BatchNorm2d(cout)
        self.shortcut = (nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(self.shortcut(x) + branch)


def cifar_resnet(shape, classes, depth=20, width=1.0):
    """He et al.'s 6n+2 ResNet: 3x3 stem, three levels of n blocks at 16w, 32w, 64w channels."""
    n = (depth - 2) // 6
    channels = [max(1, round(c * width)) for c in (16, 32, 64)]
    layers = [conv(shape[0], channels[0], 3, 1), nn.BatchNorm2d(channels[0]), nn.ReLU()]
    cin = channels[0]
    for level, cout in enumerate(channels):
        for b in range(n):
            layers.append(BasicBlock(cin, cout, 2 if level > 0 and b == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm, self.heads = nn.LayerNorm(dim), heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        h = self.norm(x)
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
        q = split(self.q(h)) * (d // self.heads) ** -0.5
        weights = torch.softmax(q @ split(self.k(h)).transpose(-2, -1), -1)
        return self.proj((weights @ split(self.v(h))).transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class Vit(nn.Module):
    """Patch embedding (conv), class token, position embedding, pre-norm blocks, cls pooling."""

    def __init__(self, shape, classes, depth=6, dim=128, heads=4, hidden=256, patch=4):
        super().__init__()
        patches = (shape[1] // patch) * (shape[2] // patch)
        self.patch = nn.Conv2d(shape[0], dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, dim))
        self.blocks = nn.ModuleList(nn.ModuleList([Attention(dim, heads), FeedForward(dim, hidden)])
                                    for _ in range(depth))
        self.norm, self.fc = nn.LayerNorm(dim), nn.Linear(dim, classes)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "norm" in name:
                    continue
                p.zero_() if name.endswith("bias") else p.normal_(0.0, 0.02)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), tokens), 1) + self.pos_embed
        for attn, mlp in self.blocks:
            x = x + attn(x)
            x = x + mlp(x)
        return self.fc(self.norm(x[:, 0]))


def build(args, shape):
    if args.model == "mlp":
        return mlp(shape, args.classes)
    if args.model == "resnet":
        return cifar_resnet(shape, args.classes, args.depth or 20, args.width or 1.0)
    if args.model == "vit":
        return Vit(shape, args.classes, args.depth or 6)
    raise SystemExit(f"zoo_peer: unknown --model {args.model}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mlp", help="mlp, resnet or vit")
    parser.add_argument("--depth", type=int, default=0)
    parser.add_argument("--width", type=float, default=0.0)
    parser.add_argument("--shape", default="1,28,28", help="one sample: channels,height,width")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    shape = [int(s) for s in args.shape.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build(args, shape)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Random samples drawn once, as tessera's synthetic set is generated once before training.
    inputs = torch.randn(args.steps * args.batch_size, *shape)
    labels = torch.randint(0, args.classes, (args.steps * args.batch_size,))
    autocast = (torch.autocast("cpu", torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())
    print(f"peer: {args.model}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{args.threads} threads, {args.precision}, torch {torch.__version__}", flush=True)
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        batch = slice(step * args.batch_size, (step + 1) * args.batch_size)
        optimizer.zero_grad()
        with autocast:
            outputs = model(inputs[batch])
        loss = F.cross_entropy(outputs.float(), labels[batch])
        loss.backward()
        loss_value = loss.item()
        optimizer.step()
    seconds = time.perf_counter() - start
    print(f"samples_per_second {args.steps * args.batch_size / seconds:.1f}")
    print(f"final_loss {loss_value:.4f}")


if __name__ == "__main__":
    main()
