#!/usr/bin/env python3
"""Golden values for tests/nn/test_loss.cpp, test_optim.cpp and test_schedule.cpp, from PyTorch itself
(autograd gradients, torch.optim, torch.optim.lr_scheduler), in double precision.
Run: /usr/bin/python3 tests/nn/torch_reference.py   (Debian python3-torch 1.13); paste the output.
The inputs are closed-form sequences the C++ tests rebuild exactly (see make_inputs there)."""
import math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
N, C, H, W = 2, 3, 2, 2
M = N * C * H * W


def logits():  # x_i = ((7 i) mod 11)/2 − 2.5
    return torch.tensor([((7 * i) % 11) * 0.5 - 2.5 for i in range(M)]).view(N, C, H, W)


def soft():  # t_i = ((5 i) mod 9)/8
    return torch.tensor([((5 * i) % 9) / 8.0 for i in range(M)]).view(N, C, H, W)


def labels():  # l_j = (2 j + 1) mod 3, l_5 = −1 (ignored)
    l = [(2 * j + 1) % 3 for j in range(N * H * W)]
    l[5] = -1
    return torch.tensor(l, dtype=torch.int64).view(N, H, W)


def mask():
    return torch.tensor([1.0 if i % 3 == 0 else 0.0 for i in range(M)]).view(N, C, H, W)


def emit(name, value, grad):
    g = ", ".join("%.17g" % v for v in grad.flatten().tolist())
    print("  {\"%s\", %.17g, {%s}}," % (name, value.item(), g))


def run(name, fn):
    x = logits().requires_grad_(True)
    v = fn(x)
    v.backward()
    emit(name, v, x.grad)


def focal_sigmoid(x, t, alpha, gamma):  # torchvision.ops.sigmoid_focal_loss, reduction="mean"
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.mean()


def focal_softmax(x, t, gamma, w):  # t: [N, C, H, W] distribution; mean over pixels with Σ_c t > 0
    logp = F.log_softmax(x, dim=1)
    per = -(w.view(1, -1, 1, 1) * t * (1 - logp.exp()) ** gamma * logp).sum(1)
    used = (t.sum(1) > 0).sum()
    return per.sum() / used


def one_hot(l):
    t = torch.zeros(N, C, H, W)
    for n in range(N):
        for h in range(H):
            for w in range(W):
                if l[n, h, w] >= 0:
                    t[n, l[n, h, w], h, w] = 1
    return t


def tversky(p, t, alpha, beta, smooth, valid=None):
    if valid is not None:
        p = p * valid
    dims = (0, 2, 3)
    tp = (p * t).sum(dims)
    fp = (p * (1 - t)).sum(dims)
    fn = ((1 - p) * t).sum(dims)
    return 1 - ((tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).mean()


print("// losses: name, value, dL/dx")
run("mse", lambda x: F.mse_loss(x, soft()))
run("masked_mse", lambda x: F.mse_loss(x[mask() > 0], soft()[mask() > 0]))
run("bce_pos_weight", lambda x: F.binary_cross_entropy_with_logits(x, soft(), pos_weight=torch.tensor([1.0, 2.5, 0.5]).view(C, 1, 1)))
run("focal_sigmoid_a025_g2", lambda x: focal_sigmoid(x, soft(), 0.25, 2.0))
run("focal_sigmoid_noalpha_g05", lambda x: focal_sigmoid(x, soft(), -1, 0.5))
run("cross_entropy_labels", lambda x: F.cross_entropy(x, labels(), ignore_index=-1))
run("cross_entropy_soft", lambda x: F.cross_entropy(x, F.softmax(soft() * 3, dim=1)))
run("focal_softmax_labels_g2_w", lambda x: focal_softmax(x, one_hot(labels()), 2.0, torch.tensor([1.0, 2.0, 0.5])))
run("tversky_softmax_labels", lambda x: tversky(F.softmax(x, 1), one_hot(labels()), 0.3, 0.7, 1.0,
                                                (labels() >= 0).double().unsqueeze(1)))
run("tversky_sigmoid", lambda x: tversky(torch.sigmoid(x), soft(), 0.7, 0.3, 0.5))
run("dice_none", lambda x: tversky(torch.sigmoid(x), soft(), 0.5, 0.5, 1.0))  # probabilities p = σ(x) given


def opt_run(name, make):
    p0 = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)   # decay
    p1 = torch.tensor([0.1, -0.2], requires_grad=True)        # no decay
    opt = make(p0, p1)
    for k in range(5):  # gradient of Σ (p − 0.3)² + 0.1·k·Σ p
        for p in (p0, p1):
            p.grad = 2 * (p.detach() - 0.3) + 0.1 * k
        opt.step()
    v = ", ".join("%.17g" % v for v in p0.tolist() + p1.tolist())
    print("  {\"%s\", {%s}}," % (name, v))


print("// optimizers after 5 steps: p0 (3, decay) then p1 (2, no decay)")
groups = lambda p0, p1, wd: [{"params": [p0], "weight_decay": wd}, {"params": [p1], "weight_decay": 0.0}]
opt_run("sgd_plain", lambda p0, p1: torch.optim.SGD(groups(p0, p1, 0.05), lr=0.1))
opt_run("sgd_momentum", lambda p0, p1: torch.optim.SGD(groups(p0, p1, 0.01), lr=0.1, momentum=0.9, dampening=0.1))
opt_run("sgd_nesterov", lambda p0, p1: torch.optim.SGD(groups(p0, p1, 0.01), lr=0.1, momentum=0.9, nesterov=True))
opt_run("adam", lambda p0, p1: torch.optim.Adam(groups(p0, p1, 0.1), lr=0.01))
opt_run("adamw", lambda p0, p1: torch.optim.AdamW(groups(p0, p1, 0.1), lr=0.01, betas=(0.8, 0.99), eps=1e-6))


def sched(name, make, steps, metric=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    s = make(opt)
    lrs, moms = [], []
    for k in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if k + 1 < steps:
            s.step(metric[k]) if metric else s.step()
    print("  {\"%s\", {%s}, {%s}}," % (name, ", ".join("%.17g" % v for v in lrs), ", ".join("%.17g" % v for v in moms)))


import warnings
warnings.filterwarnings("ignore")
print("// schedules: lr (and momentum) used at index 0, 1, ...")
sched("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 10)
sched("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.001), 16)
sched("one_cycle", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=20), 21)
sched("one_cycle_three", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=17, pct_start=0.25,
                                                                       three_phase=True), 18)
plateau = [1.0, 0.9, 0.95, 0.9, 0.91, 0.8999, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.84, 0.85, 0.86, 0.87, 0.88]
sched("plateau", lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1,
                                                                      min_lr=0.02), len(plateau), plateau)
