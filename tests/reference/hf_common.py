"""Shared helpers for the Hugging Face reference generators (tests/reference/gen_hf_*.py).

Holds what both generators need: the assets root, the offline/threads/seed
setup, the "outputs newer than inputs" freshness rule, atomic writes, and the
builders of the randomly initialised models that gen_hf_models.py saves (so
gen_hf_lora_grads.py can build a missing base model itself).

Everything here is deterministic: a model is a function of its name.
"""

import copy
import json
import math
import os
import shutil
import sys
from pathlib import Path

# No network, ever: these must be set before transformers / huggingface_hub load.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

# The models gen_hf_models.py writes, in the order it writes them.
MODEL_NAMES = [
    "bert-mini-random",
    "bert-mini-random-f16",
    "bert-tiny-cls-random",
    "roberta-2l-random",
    "gpt2-2l-random",
    "gpt2-cls-random",
]

BERT_TOKENIZER_FILES = ["vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
ROBERTA_TOKENIZER_FILES = ["vocab.json", "merges.txt"]
GPT2_TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer.json"]

# Test sentences for the forward references. One per line; a line with a tab
# is a sentence pair (first \t second). No other tabs, no newlines inside.
SENTENCES = [
    "Hello world",
    "The capital of France is Paris.",
    "A",
    "Don't stop -- it's 3.14 o'clock, isn't it?!",
    "Crème brûlée, naïve café, Zürich & São Paulo: Ångström über façade.",
    "In 2023, revenue rose 12.5% to $4,200,000 (up from $3.7M in 2022); EPS was 1.07.",
    "The cat sat on the mat.\tA cat is sitting on a mat.",
    "Is this a question?\tyes, it IS a question -- or is it \u201cnot\u201d?",
    "UNBELIEVABLE!!! the quick brown fox jumps over the lazy dog... twice; (really) [sic] {ok} <tag> #hash @user",
    "Hyphenated-words, e-mail addresses like someone@example.com, and URLs such as https://example.org/a?b=c.",
    "When the committee finally convened after months of delays, its members discovered that the "
    "original proposal, drafted in 1998 by a small group of engineers working out of a converted "
    "warehouse near the harbour, had anticipated nearly every objection that the regulators would later "
    "raise, including the concerns about noise, traffic, water usage and the long-term maintenance "
    "costs that had worried the neighbouring towns for years, although nobody could quite remember "
    "who had kept the only surviving copy of that remarkably prescient document.",
    "  leading and trailing spaces, and   multiple   spaces inside  ",
]

# gpt2-2l-random: greedy continuations of the first lines, GENERATE_NEW tokens.
GENERATE_LINES = 4
GENERATE_NEW = 12

# Scales of the noise added to every parameter after the standard init, so
# that LayerNorm weights are not 1, biases not 0, attention not uniform.
NOISE_LAYERNORM_WEIGHT = 0.1
NOISE_VECTOR = 0.05  # biases, LayerNorm biases
NOISE_EMBEDDING = 0.03  # embedding tables (a LayerNorm follows)
NOISE_LINEAR_GAIN = 1.5  # linear weights [out, in]: + N(0, (gain/sqrt(in))^2), so that
# attention scores have a standard deviation near gain^2 (softmax neither flat nor one-hot)


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def setup_torch(threads=2):
    import torch

    torch.set_num_threads(threads)
    import transformers

    transformers.logging.set_verbosity_error()
    return torch


def assets_root():
    env = os.environ.get("BILORA_ASSETS")
    root = Path(env) if env else (REPO_ROOT.parent / "shared")
    if not root.is_dir():
        die(
            f"assets root {root} is not a directory "
            f"({'from $BILORA_ASSETS' if env else 'default: the shared dir beside the repo'}); "
            "set BILORA_ASSETS to the directory holding models/ and data/"
        )
    return root


def require_files(paths):
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        die("missing asset file(s):\n  " + "\n  ".join(missing) + "\n(set BILORA_ASSETS to the assets root)")


def out_dir_from_argv(usage):
    if len(sys.argv) < 2:
        die(f"usage: {usage}")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    return out


def newest_mtime(paths):
    return max(Path(p).stat().st_mtime for p in paths)


def is_fresh(outputs, deps):
    """True when every output exists and each is newer than every dependency."""
    try:
        oldest_out = min(Path(p).stat().st_mtime for p in outputs)
    except FileNotFoundError:
        return False
    return oldest_out > newest_mtime(deps)


def tmp_sibling(path):
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def replace_dir(tmp, final):
    """Move a finished temporary directory into place (replacing an old one)."""
    final = Path(final)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_safetensors(tensors, path, metadata=None):
    """Write a safetensors file atomically (tmp + rename); tensors made contiguous.

    The metadata dict goes in as ONE key, "info" (sorted JSON): the safetensors
    library writes several metadata keys in hash order, which would make the
    bytes differ from run to run.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = tmp_sibling(path)
    meta = {"info": json.dumps(metadata, sort_keys=True)} if metadata else None
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def write_text(path, text):
    path = Path(path)
    tmp = tmp_sibling(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# Random models


def perturb_(model, seed):
    """Add seeded Gaussian noise to every parameter, in named_parameters order."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                s = NOISE_LAYERNORM_WEIGHT
            elif p.dim() == 1:
                s = NOISE_VECTOR
            elif "embeddings" in name:
                s = NOISE_EMBEDDING
            else:
                s = NOISE_LINEAR_GAIN / math.sqrt(p.shape[1])
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * s)


def model_spec(name):
    """(asset dir name, architecture, tokenizer files, noise seed) of a model."""
    specs = {
        "bert-mini-random": ("bert-mini", "BertModel", BERT_TOKENIZER_FILES, 1),
        "bert-mini-random-f16": ("bert-mini", "BertModel", BERT_TOKENIZER_FILES, 1),
        "bert-tiny-cls-random": ("bert-tiny", "BertForSequenceClassification", BERT_TOKENIZER_FILES, 3),
        "roberta-2l-random": ("roberta-base", "RobertaModel", ROBERTA_TOKENIZER_FILES, 2),
        "gpt2-2l-random": ("gpt2", "GPT2LMHeadModel", GPT2_TOKENIZER_FILES, 4),
        "gpt2-cls-random": ("gpt2", "GPT2ForSequenceClassification", GPT2_TOKENIZER_FILES, 5),
    }
    if name not in specs:
        die(f"unknown model {name!r}; known: {', '.join(specs)}")
    return specs[name]


def build_model(name, assets):
    """The in-memory fp32 model (eval mode) for a model name. Deterministic."""
    import torch
    from transformers import (BertConfig, BertForSequenceClassification, BertModel, GPT2Config,
                              GPT2ForSequenceClassification, GPT2LMHeadModel, RobertaConfig,
                              RobertaModel)

    asset_dir, arch, tok_files, noise_seed = model_spec(name)
    cfg_path = assets / "models" / asset_dir / "config.json"
    require_files([cfg_path] + [assets / "models" / asset_dir / f for f in tok_files])
    torch.manual_seed(0)
    if arch == "RobertaModel":
        cfg = RobertaConfig.from_json_file(str(cfg_path))  # model_type roberta (class attribute)
        cfg.num_hidden_layers = 2
        # roberta-base's 2019 config lacks these; RobertaConfig's defaults are the right ones.
        cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = 1, 0, 2
        model = RobertaModel(cfg)
    elif arch == "GPT2LMHeadModel":
        cfg = GPT2Config.from_json_file(str(cfg_path))
        cfg.n_layer = 2
        model = GPT2LMHeadModel(cfg)  # saved with the "transformer." prefix, lm_head tied
    elif arch == "GPT2ForSequenceClassification":
        cfg = GPT2Config.from_json_file(str(cfg_path))
        cfg.n_layer, cfg.n_embd, cfg.n_head = 2, 128, 4  # small: the head is what is checked
        cfg.num_labels = 2
        cfg.pad_token_id = cfg.eos_token_id  # as GPT-2 is fine-tuned: pad with <|endoftext|>
        model = GPT2ForSequenceClassification(cfg)
    elif arch == "BertModel":
        cfg = BertConfig.from_json_file(str(cfg_path))
        model = BertModel(cfg)
    else:
        cfg = BertConfig.from_json_file(str(cfg_path))
        cfg.num_labels = 2
        model = BertForSequenceClassification(cfg)
    cfg._name_or_path = name
    perturb_(model, noise_seed)
    model.eval()
    return model


def load_tokenizer(model_dir):
    """The fast HF tokenizer of a saved model dir (from its local files only)."""
    from transformers import BertTokenizerFast, GPT2TokenizerFast, RobertaTokenizerFast

    model_dir = Path(model_dir)
    cfg = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").is_file() else {}
    if cfg.get("model_type") == "gpt2":
        return GPT2TokenizerFast(vocab_file=str(model_dir / "vocab.json"),
                                 merges_file=str(model_dir / "merges.txt"))
    if (model_dir / "vocab.json").is_file():
        return RobertaTokenizerFast(
            vocab_file=str(model_dir / "vocab.json"), merges_file=str(model_dir / "merges.txt")
        )
    return BertTokenizerFast.from_pretrained(str(model_dir))


def load_saved_model(model_dir):
    """Reload a saved model dir with from_pretrained (fp32, eval)."""
    import torch
    from transformers import (BertForSequenceClassification, BertModel, GPT2ForSequenceClassification,
                              GPT2LMHeadModel, RobertaModel)

    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    cls = {
        "BertModel": BertModel,
        "BertForSequenceClassification": BertForSequenceClassification,
        "RobertaModel": RobertaModel,
        "GPT2LMHeadModel": GPT2LMHeadModel,
        "GPT2ForSequenceClassification": GPT2ForSequenceClassification,
    }[cfg["architectures"][0]]
    model = cls.from_pretrained(str(model_dir), torch_dtype=torch.float32)
    model.eval()
    return model


def encode_line(tok, line):
    parts = line.split("\t")
    if len(parts) == 1:
        return tok(parts[0], return_tensors="pt")
    if len(parts) == 2:
        return tok(parts[0], parts[1], return_tensors="pt")
    die(f"test line has more than one tab: {line!r}")


def model_outputs(model_dir):
    """Every file a model's generation writes (dir contents and forward refs)."""
    model_dir = Path(model_dir)
    name = model_dir.name
    out = model_dir.parent.parent
    _, _, tok_files, _ = model_spec(name)
    return (
        [model_dir / "config.json", model_dir / "model.safetensors"]
        + [model_dir / f for f in tok_files]
        + [out / "forward" / f"{name}.txt", out / "forward" / f"{name}.safetensors"]
    )


def model_deps():
    return [HERE / "hf_common.py", HERE / "gen_hf_models.py"]


def ensure_model(out, name, assets, verbose=True):
    """Build OUT/models/<name>/ and OUT/forward/<name>.{txt,safetensors} unless fresh.

    Returns True when it (re)built them.
    """
    import torch

    model_dir = Path(out) / "models" / name
    if is_fresh(model_outputs(model_dir), model_deps()):
        if verbose:
            print(f"{name}: up to date ({model_dir})")
        return False

    asset_dir, arch, tok_files, _ = model_spec(name)
    (Path(out) / "models").mkdir(parents=True, exist_ok=True)
    (Path(out) / "forward").mkdir(parents=True, exist_ok=True)

    f16 = name.endswith("-f16")
    mem = build_model("bert-mini-random" if f16 else name, assets)
    mem.config._name_or_path = name
    disk = copy.deepcopy(mem).half() if f16 else mem

    tmp = tmp_sibling(model_dir)
    if tmp.exists():
        shutil.rmtree(tmp)
    disk.save_pretrained(str(tmp), safe_serialization=True)
    for f in tok_files:
        shutil.copyfile(assets / "models" / asset_dir / f, tmp / f)
    replace_dir(tmp, model_dir)

    # Reference outputs come from the files on disk, reloaded in fp32: for the
    # f16 model that is the fp16-rounded weights computed in fp32.
    ref = load_saved_model(model_dir)
    mem_sd = mem.state_dict()
    for k, v in ref.state_dict().items():
        if not v.is_floating_point():
            continue
        want = mem_sd[k].half().float() if f16 else mem_sd[k]
        if not torch.equal(v, want):
            die(f"{name}: reloaded tensor {k} differs from the one saved")
    tok = load_tokenizer(model_dir)
    tensors = {}
    max_tokens = 0
    max_diff_mem = 0.0
    with torch.no_grad():
        for i, line in enumerate(SENTENCES):
            enc = encode_line(tok, line)
            ids = enc["input_ids"]
            tt = enc.get("token_type_ids", torch.zeros_like(ids))
            kwargs = {k: v for k, v in enc.items()}
            is_cls = arch in ("BertForSequenceClassification", "GPT2ForSequenceClassification")
            is_lm = arch.startswith("GPT2")
            encoder = ref.transformer if is_lm else ref.bert if is_cls else ref
            hidden = encoder(**kwargs).last_hidden_state[0]
            tensors[f"ids.{i}"] = ids[0].to(torch.float32)
            tensors[f"token_type_ids.{i}"] = tt[0].to(torch.float32)
            tensors[f"hidden.{i}"] = hidden.to(torch.float32)
            if is_cls:
                tensors[f"logits.{i}"] = ref(**kwargs).logits[0].to(torch.float32)
            if arch == "GPT2LMHeadModel" and i < GENERATE_LINES:
                # greedy continuation, as `bilora generate` makes it
                out_ids = ref.generate(ids, attention_mask=enc["attention_mask"], do_sample=False,
                                       max_new_tokens=GENERATE_NEW, pad_token_id=ref.config.eos_token_id)
                tensors[f"generate.{i}"] = out_ids[0, ids.shape[1]:].to(torch.float32)
            # Sanity: the in-memory fp32 model agrees with the reloaded one
            # (for f16: the difference is what fp16 rounding of the weights costs).
            mem_hidden = (mem.transformer if is_lm else mem.bert if is_cls else mem)(
                **kwargs).last_hidden_state[0]
            max_diff_mem = max(max_diff_mem, (mem_hidden - hidden).abs().max().item())
            max_tokens = max(max_tokens, ids.shape[1])
    if not f16 and max_diff_mem > 1e-5:
        die(f"{name}: reloaded model disagrees with the in-memory one (max |diff| {max_diff_mem:g})")

    tok_class = type(tok).__name__
    meta = {
        "model": name,
        "tokenizer": tok_class,
        "count": str(len(SENTENCES)),
        "ids_dtype": "float32 (exact integers)",
        "hidden": "last_hidden_state, eval mode, batch of one, no padding",
    }
    write_text(Path(out) / "forward" / f"{name}.txt", "".join(s + "\n" for s in SENTENCES))
    save_safetensors(tensors, Path(out) / "forward" / f"{name}.safetensors", metadata=meta)

    n_params = sum(p.numel() for p in ref.parameters())
    dtype = "float16" if f16 else "float32"
    extra = f", max |hidden(f16 weights) - hidden(f32 weights)| {max_diff_mem:.2e}" if f16 else ""
    if verbose:
        print(
            f"{name}: {arch} {n_params} params ({dtype} on disk), {len(SENTENCES)} lines, "
            f"max {max_tokens} tokens, {tok_class}{extra} -> {model_dir}"
        )
    return True
