"""One LoRA training step in PyTorch + PEFT: the reference for the engine's backward pass.

Usage: .venv/bin/python tests/reference/gen_hf_lora_grads.py OUT_DIR
Needs OUT_DIR/models/<base>/ from gen_hf_models.py (built here if missing or stale) and
$BILORA_ASSETS/data/glue/RTE/dev.tsv.

For each base model, the step is:
  model  = <Cls>.from_pretrained(OUT_DIR/models/<base>, num_labels=3,
                                 hidden_dropout_prob=0, attention_probs_dropout_prob=0)
           bert-mini-random  -> BertForSequenceClassification: logits = classifier(tanh(
                                bert.pooler.dense(h[:, 0])))  (pooler is frozen base weight)
           roberta-2l-random -> RobertaForSequenceClassification: logits = out_proj(tanh(
                                dense(h[:, 0])))  (no pooler; the saved pooler is unused)
           the classifier is then overwritten with seeded N(0, 0.04^2) values (weights and biases).
  peft   = get_peft_model(model, LoraConfig(task_type=SEQ_CLS, r=4, lora_alpha=8,
                                            target_modules=["query", "value"], lora_dropout=0))
           so scale = alpha / r = 2: W x + b + 2 * B (A x).  lora_A: PEFT's init (kaiming
           uniform, after torch.manual_seed); lora_B: seeded N(0, 0.05^2) (PEFT would zero it).
           modules_to_save=["classifier"] (what PEFT's SEQ_CLS task adds by itself anyway,
           made explicit so adapter_config.json says it): the whole classifier head is
           trainable and saved in full.
  batch  = first 4 data rows of RTE dev.tsv (split on tab only: index, sentence1, sentence2,
           label), tokenizer(sentence1s, sentence2s, padding="longest", truncation=True
           [longest_first], max_length=64); labels = [0, 1, 2, 1] (fixed, not RTE's).
           bert: BertTokenizerFast; roberta: RobertaTokenizerFast (pads with id 1, and RoBERTa's
           position ids skip pads: cumsum of (id != 1) + 1).
  loss   = mean cross-entropy over the 4 examples, model.train() (deterministic: dropout 0);
           loss.backward().

Files in OUT_DIR/lora_grads/<base>/ (bert-mini-random, roberta-2l-random), all float32:
  adapter.safetensors        the trainable tensors under the names PEFT's save_pretrained
                             writes (this IS PEFT's adapter_model.safetensors):
                               base_model.model.<prefix>.encoder.layer.N.attention.self.
                                 {query,value}.lora_A.weight [4, H]  and  .lora_B.weight [H, 4]
                               (<prefix> = bert | roberta)
                               bert:    base_model.model.classifier.{weight [3, H], bias [3]}
                               roberta: base_model.model.classifier.dense.{weight [H, H], bias [H]},
                                        base_model.model.classifier.out_proj.{weight [3, H], bias [3]}
  adapter_model.safetensors  the same file (hard link), so the dir is a PEFT adapter dir
  adapter_config.json        as PEFT writes it (base_model_name_or_path = the base model dir
                             as given on the command line; target_modules sorted)
  batch.safetensors          input_ids, attention_mask, token_type_ids [4, T] (all zeros for
                             RoBERTa, which takes none), labels [4]; integers stored as float32
  grads.safetensors          loss [1], logits [4, 3] (the train-mode forward), and
                             "<name>.grad" for every tensor <name> of adapter.safetensors
                             (same shape): d loss / d tensor.

H = 256 (bert-mini-random) or 768 (roberta-2l-random). With these rows T = 64: rows 2 and 3
are truncated to 64, rows 0 and 1 padded (attention_mask sums: bert 36, 49, 64, 64; roberta
42, 51, 64, 64). Each file's safetensors metadata has one key, "info" (JSON: base, r, ...).

The base weights are not copied: load them from OUT_DIR/models/<base>/.
Outputs newer than this script, hf_common.py and the base model.safetensors are kept.
"""

import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_common as hc  # noqa: E402

BASES = ["bert-mini-random", "roberta-2l-random"]
RANK, ALPHA = 4, 8
TARGETS = ["query", "value"]
NUM_LABELS = 3
LABELS = [0, 1, 2, 1]
MAX_LENGTH = 64
SEED = 1234
CLASSIFIER_STD = 0.04
LORA_B_STD = 0.05
OUTPUT_FILES = [
    "adapter.safetensors",
    "adapter_model.safetensors",
    "adapter_config.json",
    "batch.safetensors",
    "grads.safetensors",
]


def read_rte_pairs(path, n):
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    if header[:3] != ["index", "sentence1", "sentence2"]:
        hc.die(f"{path}:1: expected header 'index<TAB>sentence1<TAB>sentence2<TAB>label', got {header}")
    pairs = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cols = line.rstrip("\r").split("\t")
        if len(cols) != 4:
            hc.die(f"{path}:{lineno}: expected 4 tab-separated columns, got {len(cols)}")
        pairs.append((cols[1], cols[2]))
        if len(pairs) == n:
            return pairs
    hc.die(f"{path}: fewer than {n} data rows")


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def build_one(out, base, rte_path):
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import BertForSequenceClassification, RobertaForSequenceClassification

    base_dir = Path(out) / "models" / base
    dest = Path(out) / "lora_grads" / base
    deps = [Path(__file__).resolve(), hc.HERE / "hf_common.py", base_dir / "model.safetensors"]
    if hc.is_fresh([dest / f for f in OUTPUT_FILES], deps):
        print(f"{base}: up to date ({dest})")
        return False

    is_roberta = base.startswith("roberta")
    cls = RobertaForSequenceClassification if is_roberta else BertForSequenceClassification
    torch.manual_seed(SEED)
    model = cls.from_pretrained(
        str(base_dir),
        num_labels=NUM_LABELS,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        torch_dtype=torch.float32,
    )
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for _, p in sorted(model.classifier.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * CLASSIFIER_STD)

    torch.manual_seed(SEED)
    lcfg = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=RANK,
        lora_alpha=ALPHA,
        target_modules=list(TARGETS),
        lora_dropout=0.0,
        modules_to_save=["classifier"],  # what SEQ_CLS adds anyway; explicit in adapter_config.json
    )
    peft = get_peft_model(model, lcfg)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * LORA_B_STD)

    tok = hc.load_tokenizer(base_dir)
    pairs = read_rte_pairs(rte_path, len(LABELS))
    enc = tok(
        [a for a, _ in pairs],
        [b for _, b in pairs],
        padding="longest",
        truncation=True,
        max_length=MAX_LENGTH,
        return_tensors="pt",
    )
    input_ids = enc["input_ids"]
    attention_mask = enc["attention_mask"]
    token_type_ids = enc.get("token_type_ids", torch.zeros_like(input_ids))
    labels = torch.tensor(LABELS, dtype=torch.long)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if not is_roberta:
        inputs["token_type_ids"] = token_type_ids

    peft.train()
    peft.zero_grad(set_to_none=True)
    out_fw = peft(**inputs, labels=labels)
    loss, logits = out_fw.loss, out_fw.logits
    check = F.cross_entropy(logits, labels)
    if abs(check.item() - loss.item()) > 1e-6:
        hc.die(f"{base}: HF loss {loss.item()} != mean cross-entropy {check.item()}")
    loss.backward()

    # PEFT's own files, written into a temporary dir that replaces dest at the end.
    tmp = hc.tmp_sibling(dest)
    if tmp.exists():
        shutil.rmtree(tmp)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # PEFT's model card (README.md) needs Jinja2, which the venv lacks; we do not want it anyway.
    peft.create_or_update_model_card = lambda *args, **kwargs: None
    peft.save_pretrained(str(tmp), safe_serialization=True, save_embedding_layers=False)
    # PEFT keeps target_modules as a set, so its order in the JSON varies from run to run:
    # sort it, and write the file back the way PEFT writes it (indent 2, sorted keys).
    cfg_path = tmp / "adapter_config.json"
    acfg = json.loads(cfg_path.read_text())
    if isinstance(acfg.get("target_modules"), list):
        acfg["target_modules"] = sorted(acfg["target_modules"])
    cfg_path.write_text(json.dumps(acfg, indent=2, sort_keys=True))
    saved = load_file(str(tmp / "adapter_model.safetensors"))

    # Map each trainable parameter to its saved name by storage identity.
    sd = get_peft_model_state_dict(peft, save_embedding_layers=False)
    if set(sd) != set(saved):
        hc.die(f"{base}: get_peft_model_state_dict names differ from adapter_model.safetensors")
    by_ptr = {v.data_ptr(): k for k, v in sd.items()}
    grads = {}
    for pname, p in peft.named_parameters():
        if not p.requires_grad:
            continue
        key = by_ptr.get(p.data_ptr())
        if key is None:
            hc.die(f"{base}: trainable parameter {pname} is not among PEFT's saved tensors")
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().max() == 0:
            hc.die(f"{base}: gradient of {pname} is missing, non-finite or all zero")
        if not torch.equal(saved[key], p.detach()):
            hc.die(f"{base}: saved {key} differs from parameter {pname}")
        grads[key + ".grad"] = p.grad.detach().clone()
    if len(grads) != len(saved):
        hc.die(f"{base}: {len(saved)} saved tensors but {len(grads)} trainable parameters")
    grads["loss"] = loss.detach().reshape(1)
    grads["logits"] = logits.detach()

    meta = {"base": base, "r": str(RANK), "lora_alpha": str(ALPHA), "scale": str(ALPHA / RANK)}
    os.replace(tmp / "adapter_model.safetensors", tmp / "adapter.safetensors")
    link_or_copy(tmp / "adapter.safetensors", tmp / "adapter_model.safetensors")
    batch = {
        "input_ids": input_ids.to(torch.float32),
        "attention_mask": attention_mask.to(torch.float32),
        "token_type_ids": token_type_ids.to(torch.float32),
        "labels": labels.to(torch.float32),
    }
    hc.save_safetensors(batch, tmp / "batch.safetensors", metadata={**meta, "tokenizer": type(tok).__name__})
    hc.save_safetensors(grads, tmp / "grads.safetensors", metadata=meta)
    hc.replace_dir(tmp, dest)

    # Sanity: a fresh base plus PeftModel.from_pretrained(dest) gives the same logits.
    torch.manual_seed(SEED + 1)
    base2 = cls.from_pretrained(
        str(base_dir), num_labels=NUM_LABELS, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    reloaded = PeftModel.from_pretrained(base2, str(dest))
    reloaded.eval()
    with torch.no_grad():
        diff = (reloaded(**inputs).logits - logits.detach()).abs().max().item()
    if diff > 1e-5:
        hc.die(f"{base}: PeftModel.from_pretrained({dest}) logits differ by {diff:g}")

    n_lora = sum(1 for k in saved if "lora_" in k)
    n_train = sum(v.numel() for v in saved.values())
    print(
        f"{base}: {cls.__name__} + LoRA r={RANK} alpha={ALPHA} on {'+'.join(TARGETS)}: "
        f"{n_lora} lora tensors, {len(saved) - n_lora} classifier tensors, {n_train} trainable values; "
        f"batch [4, {input_ids.shape[1]}], loss {loss.item():.6f}, reload |dlogits| {diff:.1e} -> {dest}"
    )
    return True


def main():
    out = hc.out_dir_from_argv("gen_hf_lora_grads.py OUT_DIR")
    assets = hc.assets_root()
    rte = assets / "data" / "glue" / "RTE" / "dev.tsv"
    hc.require_files([rte])
    hc.setup_torch(2)
    for base in BASES:
        hc.ensure_model(out, base, assets)
        build_one(out, base, rte)


if __name__ == "__main__":
    main()
