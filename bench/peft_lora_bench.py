"""PyTorch + PEFT peer for bilora's LoRA training-throughput benchmark.

Builds a randomly initialised BertForSequenceClassification or
RobertaForSequenceClassification (by the config's model_type) from a local
Hugging Face config.json, wraps it with PEFT LoRA, and times full training
steps on random token ids: forward, mean cross-entropy loss, backward, AdamW
step (lr 5e-4, on the trainable parameters only), zero_grad. Training mode,
dropout as the config says, attention mask all ones, every sequence full
length. Prints ONE JSON line:

  {"peer": "pytorch+peft", "torch": ..., "transformers": ..., "peft": ...,
   "threads": N, "examples_per_s": ..., "tokens_per_s": ..., "step_ms": ...,
   "trainable_params": ..., "total_params": ..., + the run's settings}

step_ms is the mean wall time of the timed steps (after --warmup untimed ones).
trainable_params / total_params are PEFT's get_nb_trainable_parameters():
LoRA A/B plus the classifier head (PEFT trains a copy of it, modules_to_save),
and every parameter of the wrapped model (that copy included).

Example:
  .venv/bin/python bench/peft_lora_bench.py --config ../shared/models/bert-mini/config.json \\
      --batch-size 32 --seq-len 128 --rank 8 --alpha 16 --targets query,value --threads 4
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="a Hugging Face config.json (bert or roberta)")
    ap.add_argument("--model-type", choices=["bert", "roberta"], help="override / supply model_type")
    ap.add_argument("--layers", type=int, help="override num_hidden_layers")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default="query,value", help="comma-separated LoRA target module names")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    ap.add_argument("--num-labels", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 tensor-core math for float32 matmuls (cuda)")
    a = ap.parse_args()
    for name in ("batch_size", "seq_len", "rank", "steps", "threads", "num_labels"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.warmup < 0:
        ap.error("--warmup must be at least 0")
    if a.layers is not None and a.layers < 1:
        ap.error("--layers must be at least 1")
    return a


def load_config(args):
    from transformers import BertConfig, RobertaConfig

    try:
        with open(args.config, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"error: cannot read config {args.config}: {e}")
    mtype = args.model_type or raw.get("model_type")
    if mtype is None and "roberta" in os.path.abspath(args.config).lower():
        mtype = "roberta"  # roberta-base's 2019 config.json has no model_type
    if mtype not in ("bert", "roberta"):
        sys.exit(f"error: {args.config}: model_type {mtype!r} is not bert or roberta (use --model-type)")
    cfg = (RobertaConfig if mtype == "roberta" else BertConfig).from_json_file(args.config)
    if mtype == "roberta" and "pad_token_id" not in raw:
        cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = 1, 0, 2
    if args.layers is not None:
        cfg.num_hidden_layers = args.layers
    cfg.num_labels = args.num_labels
    return mtype, cfg


def main():
    args = parse_args()
    import peft
    import torch
    import transformers
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import BertForSequenceClassification, RobertaForSequenceClassification

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    mtype, cfg = load_config(args)
    # RoBERTa's positions start at pad_token_id + 1.
    max_len = cfg.max_position_embeddings - (cfg.pad_token_id + 1 if mtype == "roberta" else 0)
    if args.seq_len > max_len:
        sys.exit(f"error: --seq-len {args.seq_len} exceeds the model's {max_len} positions")
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    cls = RobertaForSequenceClassification if mtype == "roberta" else BertForSequenceClassification
    model = cls(cfg)
    lcfg = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=args.rank,
        lora_alpha=args.alpha,
        target_modules=[t for t in args.targets.split(",") if t],
        lora_dropout=0.0,
    )
    model = get_peft_model(model, lcfg).to(device)
    model.train()
    trainable, total = model.get_nb_trainable_parameters()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)

    g = torch.Generator().manual_seed(args.seed + 1)
    # Random ids above the pad id (so RoBERTa's position ids are the plain 2..T+1).
    lo = (cfg.pad_token_id or 0) + 1
    input_ids = torch.randint(lo, cfg.vocab_size, (args.batch_size, args.seq_len), generator=g).to(device)
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, args.num_labels, (args.batch_size,), generator=g).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    elapsed = time.perf_counter() - t0

    step_s = elapsed / args.steps
    result = {
        "peer": "pytorch+peft",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "threads": args.threads,
        "tf32": args.tf32,
        "attention": getattr(model.config, "_attn_implementation", None) or "eager",
        "examples_per_s": round(args.batch_size / step_s, 3),
        "tokens_per_s": round(args.batch_size * args.seq_len / step_s, 1),
        "step_ms": round(step_s * 1000.0, 3),
        "trainable_params": trainable,
        "total_params": total,
        "model_type": mtype,
        "layers": cfg.num_hidden_layers,
        "hidden": cfg.hidden_size,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "rank": args.rank,
        "alpha": args.alpha,
        "targets": args.targets,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": str(device),
        "final_loss": round(float(loss.item()), 6),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
