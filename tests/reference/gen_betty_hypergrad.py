"""Hypergradients computed by Betty (betty-ml 0.1.1): the reference for engine/hypergrad.c.

Usage: .venv/bin/python tests/reference/gen_betty_hypergrad.py OUT_DIR
Writes OUT_DIR/betty/hypergrad.safetensors and OUT_DIR/betty/hypergrad.json.

The problem (float64 throughout; every number below is in the files):
  data      x: [n, 4] features, y: [n] labels in {0, 1}; D1 = 16 rows (lower), D2 = 12 rows (upper)
  lower V   a 2-layer tanh MLP, 37 values, flattened in this order:
              W1 [6, 4] (row-major), b1 [6], w2 [6], b2 [1]
            (seeded random, then L-BFGS on L1 to near its minimizer for the given E, so the
            lower Hessian is positive definite: the IFT value and Neumann's convergence mean
            something; the Betty computation does not depend on it)
            f(x) = w2 . tanh(W1 (x * s) + b1) + b2
  upper E   5 values: s [4] (per-feature input scales, enter both levels), rho [1] (the log of
            the lower level's weight decay, enters the lower level only, so its hypergradient
            is purely the implicit term)
  L1(V, E)  = mean_{D1} bce(f, y) + 0.5 * exp(rho) * (|W1|^2 + |w2|^2)
  L2(V, E)  = mean_{D2} bce(f, y)                bce(f, y) = softplus(f) - y f

Betty is driven exactly as a user drives it: two ImplicitProblems ("lower" trains V on D1,
"upper" trains E on D2), dependencies u2l {upper: [lower]}, l2u {lower: [upper]}, and
Engine(train_iters=1).run(). The lower problem's Config picks the hypergradient method
(Betty reads type / darts_alpha / neumann_* from the *lower* problem: hypergradient/
__init__.py get_grads, path = [upper, lower, upper]). The optimizer steps are no-ops
(custom_optimizer_step): the lower one does nothing, so V stays at the given values and
the hypergradient is taken at V with the lower problem's cur_batch = D1; the upper one
records param.grad, which is what Betty hands its optimizer: direct dL2/dE plus the
implicit term. The upper Config has retain_graph=True: Problem.backward differentiates the
upper loss twice (direct grad, then get_grads), which with Betty's default retain_graph=False
raises "Trying to backward through the graph a second time".

Settings: darts (darts_alpha = 0.01, Betty's default), neumann (K = 1, alpha = 1: Betty's
defaults), neumann (K = 3, alpha = 0.5). Each Betty result is also recomputed here from the
formulas (darts: finite difference; neumann: exact Hessian-vector products) and must agree to
1e-9 relative, and the IFT value (exact inverse Hessian) is stored for context.

Tensors in hypergrad.safetensors (all float32; the float64 values rounded once):
  V [37], E [5], x1 [16, 4], y1 [16], x2 [12, 4], y2 [12]
  loss1 [1], loss2 [1]               L1, L2 at (V, E)
  grad_V_L2 [37]                     v, the vector Betty's darts/neumann start from
  grad_E_L2 [5]                      the first-order (direct) hypergradient
  grad_V_L1 [37], grad_E_L1 [5]      the lower gradients (to check a port of the problem)
  hyper.darts [5], hyper.neumann_k1_a1 [5], hyper.neumann_k3_a0.5 [5]   Betty's hypergradients
  ift [5]                            dL2/dE - (d2 L1/dE dV) H^-1 v, H = d2 L1/dV2 (exact)
  darts_lower_shift [37]             V after Betty's darts minus V before (see the JSON)

Outputs newer than this script are kept (nothing else feeds them).
"""

import json
import logging
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_common as hc  # noqa: E402

D, H, N1, N2 = 4, 6, 16, 12
SEED = 20240607
N_LOWER = H * D + H + H + 1  # 37
N_UPPER = D + 1  # 5
SETTINGS = [
    # name, Betty Config fields on the lower problem
    ("darts", {"type": "darts", "darts_alpha": 0.01}),
    ("neumann_k1_a1", {"type": "neumann", "neumann_iterations": 1, "neumann_alpha": 1.0}),
    ("neumann_k3_a0.5", {"type": "neumann", "neumann_iterations": 3, "neumann_alpha": 0.5}),
]


def make_data(torch):
    g = torch.Generator().manual_seed(SEED)
    dt = torch.float64

    def rn(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=dt) * std

    teacher = rn(D)
    x1, x2 = rn(N1, D), rn(N2, D)
    y1 = ((x1 @ teacher + rn(N1, std=0.7)) > 0).to(dt)
    y2 = ((x2 @ teacher + rn(N2, std=0.7)) > 0).to(dt)
    V = {
        "W1": rn(H, D, std=0.6),
        "b1": rn(H, std=0.3),
        "w2": rn(H, std=0.8),
        "b2": rn(1, std=0.3),
    }
    E = {"s": 1.0 + rn(D, std=0.3), "rho": torch.tensor([math.log(0.1)], dtype=dt)}
    # V near the lower minimizer for this E (L-BFGS from the random start), so that the lower
    # Hessian is positive definite and the IFT value below means something.
    params = [V[k].requires_grad_(True) for k in ["W1", "b1", "w2", "b2"]]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=500, tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = lower_loss(torch, V, E, x1, y1)
        loss.backward()
        return loss

    opt.step(closure)
    V = {k: v.detach() for k, v in V.items()}
    return x1, y1, x2, y2, V, E


def mlp(torch, Vd, x, s):
    a = torch.tanh((x * s) @ Vd["W1"].T + Vd["b1"])
    return a @ Vd["w2"] + Vd["b2"]


def bce(torch, f, y):
    return (torch.nn.functional.softplus(f) - y * f).mean()


def lower_loss(torch, Vd, Ed, x, y):
    reg = 0.5 * torch.exp(Ed["rho"][0]) * ((Vd["W1"] ** 2).sum() + (Vd["w2"] ** 2).sum())
    return bce(torch, mlp(torch, Vd, x, Ed["s"]), y) + reg


def upper_loss(torch, Vd, Ed, x, y):
    return bce(torch, mlp(torch, Vd, x, Ed["s"]), y)


def run_betty(torch, setting, x1, y1, x2, y2, V, E):
    """One Engine run with no-op optimizer steps; returns (upper grads, V after, V before)."""
    from betty.configs import Config, EngineConfig
    from betty.engine import Engine
    from betty.logging.logger_base import get_logger
    from betty.problems import ImplicitProblem

    get_logger().setLevel(logging.WARNING)  # Betty logs INFO lines to stdout

    class LowerModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for k in ["W1", "b1", "w2", "b2"]:
                setattr(self, k, torch.nn.Parameter(V[k].clone()))

    class UpperModule(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.s = torch.nn.Parameter(E["s"].clone())
            self.rho = torch.nn.Parameter(E["rho"].clone())

    def as_dict(mod, keys):
        return {k: getattr(mod, k) for k in keys}

    class Lower(ImplicitProblem):
        def training_step(self, batch):
            x, y = batch
            return lower_loss(torch, as_dict(self.module, ["W1", "b1", "w2", "b2"]),
                              as_dict(self.upper.module, ["s", "rho"]), x, y)

        def custom_optimizer_step(self, *args, **kwargs):
            pass  # no lower step: the hypergradient is taken at the given V

    recorded = {}

    class Upper(ImplicitProblem):
        def training_step(self, batch):
            x, y = batch
            return upper_loss(torch, as_dict(self.lower.module, ["W1", "b1", "w2", "b2"]),
                              as_dict(self.module, ["s", "rho"]), x, y)

        def custom_optimizer_step(self, *args, **kwargs):
            recorded["grads"] = [p.grad.detach().clone() for p in self.trainable_parameters()]
            recorded["V_after"] = torch.cat([p.detach().reshape(-1).clone()
                                             for p in self.lower.trainable_parameters()])

    lower_mod = LowerModule()
    V_before = torch.cat([p.detach().reshape(-1).clone() for p in lower_mod.parameters()])
    lower = Lower(name="lower", config=Config(**setting), module=lower_mod,
                  train_data_loader=[(x1, y1)], device="cpu")
    upper = Upper(name="upper", config=Config(retain_graph=True), module=UpperModule(),
                  train_data_loader=[(x2, y2)], device="cpu")
    engine = Engine(problems=[lower, upper], config=EngineConfig(train_iters=1, valid_step=10**9),
                    dependencies={"u2l": {upper: [lower]}, "l2u": {lower: [upper]}})
    engine.run()
    if "grads" not in recorded:
        hc.die("Betty never stepped the upper problem")
    g = torch.cat([t.reshape(-1) for t in recorded["grads"]])  # order: s, rho
    return g, recorded["V_after"], V_before


def flat(torch, d, keys):
    return torch.cat([d[k].reshape(-1) for k in keys])


def unflat(torch, vec, like, keys):
    out, o = {}, 0
    for k in keys:
        n = like[k].numel()
        out[k] = vec[o:o + n].reshape(like[k].shape)
        o += n
    return out


def main():
    out = hc.out_dir_from_argv("gen_betty_hypergrad.py OUT_DIR")
    dest = Path(out) / "betty"
    outputs = [dest / "hypergrad.safetensors", dest / "hypergrad.json"]
    if hc.is_fresh(outputs, [Path(__file__).resolve(), hc.HERE / "hf_common.py"]):
        print(f"betty hypergradients: up to date ({dest})")
        return
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    import betty

    VK, EK = ["W1", "b1", "w2", "b2"], ["s", "rho"]
    x1, y1, x2, y2, V, E = make_data(torch)
    Vf, Ef = flat(torch, V, VK), flat(torch, E, EK)
    assert Vf.numel() == N_LOWER and Ef.numel() == N_UPPER

    # ---- independent computations (torch autograd, float64) ----
    def L(level, vf, ef):
        Vd, Ed = unflat(torch, vf, V, VK), unflat(torch, ef, E, EK)
        return lower_loss(torch, Vd, Ed, x1, y1) if level == 1 else upper_loss(torch, Vd, Ed, x2, y2)

    def grads(level, vf, ef, create_graph=False):
        vf = vf.detach().requires_grad_(True)
        ef = ef.detach().requires_grad_(True)
        loss = L(level, vf, ef)
        gv, ge = torch.autograd.grad(loss, (vf, ef), create_graph=create_graph)
        return loss, gv, ge, vf, ef

    loss1, gV1, gE1, _, _ = grads(1, Vf, Ef)
    loss2, gV2, gE2, _, _ = grads(2, Vf, Ef)

    def mixed(p):  # d/dE (grad_V L1 . p), exact
        _, gv, _, vf, ef = grads(1, Vf, Ef, create_graph=True)
        return torch.autograd.grad(gv @ p, ef)[0]

    def hvp(p):  # H p, H = d2 L1 / dV2, exact
        _, gv, _, vf, ef = grads(1, Vf, Ef, create_graph=True)
        return torch.autograd.grad(gv @ p, vf)[0]

    def formula(name, cfg):
        if cfg["type"] == "darts":
            eps = cfg["darts_alpha"] / gV2.norm()
            gp = grads(1, Vf + eps * gV2, Ef)[2]
            gm = grads(1, Vf - eps * gV2, Ef)[2]
            return gE2 + (gm - gp) / (2 * eps)
        v, p, a = gV2.clone(), gV2.clone(), cfg["neumann_alpha"]
        for _ in range(cfg["neumann_iterations"]):
            v = v - a * hvp(v)
            p = p + v
        return gE2 - mixed(a * p)

    Hm = torch.autograd.functional.hessian(lambda vf: L(1, vf, Ef), Vf)
    ift = gE2 - mixed(torch.linalg.solve(Hm, gV2))
    hess_eig = torch.linalg.eigvalsh(Hm)

    tensors = {
        "V": Vf, "E": Ef, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
        "loss1": loss1.reshape(1), "loss2": loss2.reshape(1),
        "grad_V_L2": gV2, "grad_E_L2": gE2, "grad_V_L1": gV1, "grad_E_L1": gE1, "ift": ift,
    }
    results = {}
    for name, cfg in SETTINGS:
        hyper, V_after, V_before = run_betty(torch, cfg, x1, y1, x2, y2, V, E)
        if not torch.equal(V_before, Vf):
            hc.die("lower parameter order differs from the flattening (W1, b1, w2, b2)")
        want = formula(name, cfg)
        rel = ((hyper - want).abs().max() / want.abs().max()).item()
        if rel > 1e-9:
            hc.die(f"{name}: Betty {hyper.tolist()} != formula {want.tolist()} (rel {rel:.2e})")
        shift = V_after - V_before
        tensors[f"hyper.{name}"] = hyper
        if name == "darts":
            tensors["darts_lower_shift"] = shift
            eps = cfg["darts_alpha"] / gV2.norm()
            shift_rel = ((shift + eps * gV2).norm() / (eps * gV2).norm()).item()
        results[name] = {
            "betty_config": cfg,
            "hyper": hyper.tolist(),
            "implicit": (hyper - gE2).tolist(),
            "formula_max_rel_diff": rel,
            "lower_shift_norm_after": shift.norm().item(),
        }
        print(f"betty {name}: hyper {[round(v, 6) for v in hyper.tolist()]} "
              f"(formula agrees to {rel:.1e}; |V_after - V| = {shift.norm().item():.3g})")

    info = {
        "betty_version": betty.__version__,
        "torch_version": torch.__version__,
        "problem": {
            "d": D, "hidden": H, "n1": N1, "n2": N2, "seed": SEED,
            "lower": "V = [W1 (6x4 row-major), b1 (6), w2 (6), b2 (1)]; f(x) = w2 . tanh(W1 (x*s) + b1) + b2",
            "upper": "E = [s (4), rho (1)]",
            "L1": "mean_D1 [softplus(f) - y f] + 0.5 exp(rho) (|W1|^2 + |w2|^2)",
            "L2": "mean_D2 [softplus(f) - y f]",
        },
        "betty_formulas": {
            "darts": "eps = darts_alpha / |grad_V L2|; hyper = grad_E L2 + (grad_E L1(V - eps v) "
                     "- grad_E L1(V + eps v)) / (2 eps), v = grad_V L2, L1 on the lower cur_batch",
            "neumann": "p = v; K times: v <- v - alpha H v, p <- p + v; p <- alpha p; "
                       "hyper = grad_E L2 - d/dE (grad_V L1 . p), exact second derivatives",
        },
        "darts_leaves_lower_shifted": {
            "note": "betty/hypergradient/darts.py restores V with p.data.add(...) (not add_): "
                    "after a darts hypergradient the lower parameters stay at V - eps v",
            "shift_norm": results["darts"]["lower_shift_norm_after"],
            "rel_diff_from_minus_eps_v": shift_rel,
        },
        "lower_hessian_eigenvalues": hess_eig.tolist(),
        "loss1": loss1.item(), "loss2": loss2.item(),
        "grad_E_L2": gE2.tolist(), "ift": ift.tolist(),
        "settings": results,
    }
    dest.mkdir(parents=True, exist_ok=True)
    hc.save_safetensors({k: v.to(torch.float32) for k, v in tensors.items()}, dest / "hypergrad.safetensors",
                        metadata={"betty_version": betty.__version__, "seed": SEED})
    hc.write_text(dest / "hypergrad.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    print(f"betty hypergradients: L1 {loss1.item():.6f}, L2 {loss2.item():.6f}, direct "
          f"{[round(v, 6) for v in gE2.tolist()]}, IFT {[round(v, 6) for v in ift.tolist()]} -> {dest}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
