"""One training step of PEFT's DoRA and AdaLoRA layers: the reference for the engine's
dora and svd adapter forms (tests/test_forms_peft.c).

Usage: .venv/bin/python tests/reference/gen_peft_forms.py OUT_DIR
Needs OUT_DIR/models/bert-mini-random/ (from gen_hf_models.py; built here if missing or stale)
and $BILORA_ASSETS/data/glue/RTE/dev.tsv. The same set-up as gen_hf_lora_grads.py (its batch,
labels, classifier values), with another adapter:

  model  = BertForSequenceClassification.from_pretrained(OUT_DIR/models/bert-mini-random,
           num_labels=3, dropouts 0); classifier overwritten with seeded N(0, 0.04^2).
  dora   = get_peft_model(model, LoraConfig(task_type=SEQ_CLS, r=4, lora_alpha=8,
           target_modules=["query", "value"], lora_dropout=0, use_dora=True,
           modules_to_save=["classifier"]))
           PEFT 0.10 (peft/tuners/lora/layer.py, LoraLayer._apply_dora + Linear.forward):
             y = x W0^T + b + (c - 1) * (x W0^T) + c * s * B (A x),   c = m / |W0 + s B A|_row
           (the row norm detached), i.e. y = c * (x W0^T + s B A x) + b when dropout is 0.
           s = alpha / r = 2. lora_A: PEFT's init; lora_B: seeded N(0, 0.05^2) (PEFT: zero);
           lora_magnitude_vector: PEFT's init (|W0|_row) times (1 + seeded N(0, 0.1^2)).
  adalora= get_peft_model(model, AdaLoraConfig(task_type=SEQ_CLS, init_r=4, target_r=4,
           lora_alpha=8, target_modules=["query", "value"], lora_dropout=0, orth_reg_weight=0,
           modules_to_save=["classifier"]))
           PEFT 0.10 (peft/tuners/adalora/layer.py, SVDLinear.forward):
             y = x W0^T + b + (x (lora_A * lora_E)^T lora_B^T) * lora_alpha / (ranknum + 1e-5)
           with lora_A [r, in], lora_E [r, 1], lora_B [out, r], ranknum = r = 4, so the scale is
           8 / 4.00001 = 1.999995, not alpha / r = 2: the adapter path is 2.5e-6 (relative)
           smaller than the engine's svd form (s = alpha / r exactly). That is far below the
           test's tolerances; the files keep PEFT's stock behaviour.
           lora_A, lora_B: seeded N(0, 0.1^2) (PEFT: N(0, 0.02^2)), lora_E: seeded N(0, 0.5^2)
           (PEFT: N(0, 0.02^2)), so the adapter moves the logits well beyond the tolerances.
           AdaLoraModel.forward with labels adds its orthogonality penalty and refuses
           orth_reg_weight = 0, so the model is called without labels and the loss is
           F.cross_entropy(logits, labels) (= what BertForSequenceClassification computes).
  batch  = first 4 rows of RTE dev.tsv, as gen_hf_lora_grads.py; labels [0, 1, 2, 1].
  loss   = mean cross-entropy, model.train() (dropout 0); loss.backward().

Files in OUT_DIR/peft_forms/{dora,adalora}/, all float32:
  adapter_model.safetensors  PEFT's save_pretrained output: trainable tensors under PEFT's names
                               dora:    base_model.model.bert.encoder.layer.N.attention.self.
                                          {query,value}.{lora_A.weight [4,256], lora_B.weight [256,4],
                                          lora_magnitude_vector [256]}
                               adalora: ...{query,value}.{lora_A [4,256], lora_B [256,4], lora_E [4,1]}
                               both:    base_model.model.classifier.{weight [3,256], bias [3]}
  adapter_config.json        as PEFT writes it (target_modules sorted)
  batch.safetensors          input_ids, attention_mask, token_type_ids [4, T], labels [4]
  grads.safetensors          loss [1], logits [4, 3], "<name>.grad" for every tensor of
                             adapter_model.safetensors (same shape), and adapter_effect [1]:
                             max |logits - logits with the adapters disabled|.
Outputs newer than this script, gen_hf_lora_grads.py, hf_common.py and the base model are kept.
"""

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_common as hc  # noqa: E402
import gen_hf_lora_grads as lg  # noqa: E402  (the shared batch and head set-up)

BASE = "bert-mini-random"
FORMS = ["dora", "adalora"]
RANK, ALPHA = 4, 8
SEED = 4321
OUTPUT_FILES = ["adapter_model.safetensors", "adapter_config.json", "batch.safetensors", "grads.safetensors"]


def build_one(out, form, rte_path):
    import torch
    import torch.nn.functional as F
    from peft import AdaLoraConfig, LoraConfig, PeftModel, TaskType, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import BertForSequenceClassification

    base_dir = Path(out) / "models" / BASE
    dest = Path(out) / "peft_forms" / form
    deps = [Path(__file__).resolve(), hc.HERE / "hf_common.py", hc.HERE / "gen_hf_lora_grads.py",
            base_dir / "model.safetensors"]
    if hc.is_fresh([dest / f for f in OUTPUT_FILES], deps):
        print(f"{form}: up to date ({dest})")
        return False

    def base_model():
        return BertForSequenceClassification.from_pretrained(
            str(base_dir), num_labels=lg.NUM_LABELS, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, torch_dtype=torch.float32)

    torch.manual_seed(SEED)
    model = base_model()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for _, p in sorted(model.classifier.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * lg.CLASSIFIER_STD)

    torch.manual_seed(SEED)
    common = dict(task_type=TaskType.SEQ_CLS, lora_alpha=ALPHA, target_modules=list(lg.TARGETS),
                  lora_dropout=0.0, modules_to_save=["classifier"])
    if form == "dora":
        cfg = LoraConfig(r=RANK, use_dora=True, **common)
    else:
        cfg = AdaLoraConfig(init_r=RANK, target_r=RANK, orth_reg_weight=0.0, **common)
    peft = get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if form == "dora" and "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * lg.LORA_B_STD)
            elif form == "dora" and "lora_magnitude_vector" in name:
                p.mul_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif form == "adalora" and ("lora_A" in name or "lora_B" in name):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif form == "adalora" and "lora_E" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    if form == "adalora":
        # the scale PEFT uses (documented above): alpha / (ranknum + 1e-5)
        for mod in peft.modules():
            if hasattr(mod, "ranknum") and "default" in getattr(mod, "ranknum", {}):
                if float(mod.ranknum["default"]) != RANK or mod.scaling["default"] != ALPHA:
                    hc.die(f"adalora: unexpected ranknum {float(mod.ranknum['default'])} / "
                           f"scaling {mod.scaling['default']}")

    tok = hc.load_tokenizer(base_dir)
    pairs = lg.read_rte_pairs(rte_path, len(lg.LABELS))
    enc = tok([a for a, _ in pairs], [b for _, b in pairs], padding="longest", truncation=True,
              max_length=lg.MAX_LENGTH, return_tensors="pt")
    inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
              "token_type_ids": enc["token_type_ids"]}
    labels = torch.tensor(lg.LABELS, dtype=torch.long)

    peft.train()
    peft.zero_grad(set_to_none=True)
    logits = peft(**inputs).logits  # no labels: AdaLoraModel would add its orth penalty (or refuse 0)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    with torch.no_grad(), peft.disable_adapter():
        plain = peft(**inputs).logits
    effect = (logits.detach() - plain).abs().max().item()

    tmp = hc.tmp_sibling(dest)
    if tmp.exists():
        shutil.rmtree(tmp)
    dest.parent.mkdir(parents=True, exist_ok=True)
    peft.create_or_update_model_card = lambda *args, **kwargs: None  # needs Jinja2; not wanted
    peft.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
    cfg_path = tmp / "adapter_config.json"
    acfg = json.loads(cfg_path.read_text())
    if isinstance(acfg.get("target_modules"), list):
        acfg["target_modules"] = sorted(acfg["target_modules"])
    cfg_path.write_text(json.dumps(acfg, indent=2, sort_keys=True))
    saved = load_file(str(tmp / "adapter_model.safetensors"))

    sd = get_peft_model_state_dict(peft, save_embedding_layers=False)
    if set(sd) != set(saved):
        hc.die(f"{form}: get_peft_model_state_dict names differ from adapter_model.safetensors")
    by_ptr = {v.data_ptr(): k for k, v in sd.items()}
    grads = {}
    for pname, p in peft.named_parameters():
        if not p.requires_grad:
            continue
        key = by_ptr.get(p.data_ptr())
        if key is None:
            hc.die(f"{form}: trainable parameter {pname} is not among PEFT's saved tensors")
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().max() == 0:
            hc.die(f"{form}: gradient of {pname} is missing, non-finite or all zero")
        if not torch.equal(saved[key], p.detach()):
            hc.die(f"{form}: saved {key} differs from parameter {pname}")
        grads[key + ".grad"] = p.grad.detach().clone()
    if len(grads) != len(saved):
        hc.die(f"{form}: {len(saved)} saved tensors but {len(grads)} trainable parameters")
    grads["loss"] = loss.detach().reshape(1)
    grads["logits"] = logits.detach()
    grads["adapter_effect"] = torch.tensor([effect])

    meta = {"base": BASE, "form": form, "r": str(RANK), "lora_alpha": str(ALPHA),
            "scale": str(ALPHA / RANK) if form == "dora" else f"{ALPHA}/({RANK}+1e-5)"}
    batch = {k: v.to(torch.float32) for k, v in inputs.items()}
    batch["labels"] = labels.to(torch.float32)
    hc.save_safetensors(batch, tmp / "batch.safetensors", metadata={**meta, "tokenizer": type(tok).__name__})
    hc.save_safetensors(grads, tmp / "grads.safetensors", metadata=meta)
    hc.replace_dir(tmp, dest)

    # Sanity: a fresh base plus PeftModel.from_pretrained(dest) gives the same logits.
    torch.manual_seed(SEED + 1)
    reloaded = PeftModel.from_pretrained(base_model(), str(dest))
    reloaded.eval()
    with torch.no_grad():
        diff = (reloaded(**inputs).logits - logits.detach()).abs().max().item()
    if diff > 1e-5:
        hc.die(f"{form}: PeftModel.from_pretrained({dest}) logits differ by {diff:g}")

    names = sorted(k for k in saved if "lora_" in k)
    shapes = sorted({f"{k.rsplit('.', 2)[-2] if k.endswith('.weight') else k.rsplit('.', 1)[-1]}"
                     f"{list(saved[k].shape)}" for k in names})
    print(f"{form}: {len(saved)} tensors ({', '.join(shapes)}); batch [4, {enc['input_ids'].shape[1]}], "
          f"loss {loss.item():.6f}, adapter moves logits by {effect:.3g}, reload |dlogits| {diff:.1e} -> {dest}")
    return True


def main():
    out = hc.out_dir_from_argv("gen_peft_forms.py OUT_DIR")
    assets = hc.assets_root()
    rte = assets / "data" / "glue" / "RTE" / "dev.tsv"
    hc.require_files([rte])
    hc.setup_torch(2)
    hc.ensure_model(out, BASE, assets)
    for form in FORMS:
        build_one(out, form, rte)


if __name__ == "__main__":
    main()
