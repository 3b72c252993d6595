"""Randomly initialised Hugging Face models and their reference forward outputs.

Usage: .venv/bin/python tests/reference/gen_hf_models.py OUT_DIR
Assets: $BILORA_ASSETS (default: the `shared` dir beside the repo), models/*/ only.

Writes, for each model NAME below:

OUT_DIR/models/NAME/       a Hugging Face model dir, as save_pretrained(safe_serialization=True)
                           writes it: config.json + model.safetensors, plus copies of the
                           tokenizer files of the asset model it was made from.
OUT_DIR/forward/NAME.txt   the test lines (UTF-8, one per line, '\\n'-terminated); a line with
                           a tab is a sentence pair "first<TAB>second", encoded as tok(first, second).
OUT_DIR/forward/NAME.safetensors, for line i (0-based):
    ids.<i>             float32 [T]      input ids from the HF fast tokenizer (exact integers)
    token_type_ids.<i>  float32 [T]      segment ids (all 0 for RoBERTa, which has none)
    hidden.<i>          float32 [T, H]   last_hidden_state of the base encoder, model.eval(),
                                         batch of one, no padding, attention mask all ones
    logits.<i>          float32 [L]      (bert-tiny-cls-random, gpt2-cls-random) classification logits
    generate.<i>        float32 [12]     (gpt2-2l-random, lines 0-3) GPT2LMHeadModel.generate's
                                         greedy continuation ids (do_sample False, 12 new tokens)

Models (each is HF's random init under torch.manual_seed(0), then seeded Gaussian noise added
to EVERY parameter: LayerNorm weights + N(0, 0.1^2), biases and LayerNorm biases + N(0, 0.05^2),
embedding tables + N(0, 0.03^2), linear weights [out, in] + N(0, (1.5/sqrt(in))^2); so LayerNorm
is not the identity, biases are not zero and attention is neither flat nor one-hot):

  bert-mini-random       BertModel, $ASSETS/models/bert-mini/config.json (L=4 H=256 A=4 I=1024);
                         tensor names without "bert." prefix (embeddings.*, encoder.layer.N.*,
                         pooler.dense.*); tokenizer BertTokenizerFast (vocab.txt, tokenizer.json,
                         tokenizer_config.json, special_tokens_map.json copied).
  bert-mini-random-f16   the same weights stored as float16 (config torch_dtype float16); its
                         references are computed from the fp16-rounded weights in fp32.
  bert-tiny-cls-random   BertForSequenceClassification, bert-tiny config (L=2 H=128 A=2 I=512),
                         num_labels=2; names WITH "bert." prefix, plus bert.pooler.dense.* and
                         classifier.{weight [2,128], bias [2]}; logits = classifier(tanh(pooler)).
  roberta-2l-random      RobertaModel, roberta-base config with num_hidden_layers=2 (H=768 A=12
                         I=3072 V=50265, layer_norm_eps 1e-5, max_position_embeddings 514,
                         pad_token_id 1 so position ids start at 2); config.json says
                         model_type "roberta"; tokenizer RobertaTokenizerFast built from the
                         copied vocab.json + merges.txt (add_prefix_space false).
  gpt2-2l-random         GPT2LMHeadModel, gpt2 config with n_layer=2 (n_embd 768, 12 heads,
                         gelu_new, V=50257); saved names carry "transformer." (Conv1D weights
                         [in, out], fused c_attn), lm_head tied and so not stored; hidden is
                         GPT2Model's last_hidden_state (after ln_f); tokenizer GPT2TokenizerFast.
  gpt2-cls-random        GPT2ForSequenceClassification, gpt2 config with n_layer=2, n_embd=128,
                         n_head=4, num_labels=2, pad_token_id=eos (50256); score.weight [2,128]
                         (no bias); logits = score(hidden at the last token).

Outputs that exist and are newer than this script and hf_common.py are kept.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hf_common as hc  # noqa: E402


def main():
    out = hc.out_dir_from_argv("gen_hf_models.py OUT_DIR")
    assets = hc.assets_root()
    hc.setup_torch(2)
    for name in hc.MODEL_NAMES:
        hc.ensure_model(out, name, assets)


if __name__ == "__main__":
    main()
