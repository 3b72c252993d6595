/* Finding models and data on the asset search path.
 *
 * A model argument is a directory (used as is) or a name resolved, in order,
 * through each root of BILORA_ASSETS (colon-separated; each root holds
 * models/<name>/ and data/...), then $BILORA_HOME (default ~/.cache/bilora),
 * then the Hugging Face cache ($HF_HOME/hub or ~/.cache/huggingface/hub:
 * models--ORG--NAME/snapshots/<rev>/, the newest snapshot holding a
 * config.json). A name "org/name" also matches models/<name>.
 * A task is a directory, or "TASK" / "glue/TASK" resolved to
 * <root>/data/glue/<TASK> with GLUE's canonical capitalisation.
 * When nothing is found the error lists every place that was looked in. */
#ifndef BILORA_ENGINE_ASSETS_H
#define BILORA_ENGINE_ASSETS_H

#include <stddef.h>

int assets_find_model(const char *name, char *out_dir, size_t cap, char *err, size_t errlen);
int assets_find_task(const char *name, char *out_dir, size_t cap, char *err, size_t errlen);

/* Lists model directories found on the search path (each with a config.json
 * and a model.safetensors); calls fn for each. Returns the count. */
int assets_list_models(void (*fn)(const char *name, const char *dir, void *ctx), void *ctx);

#endif
