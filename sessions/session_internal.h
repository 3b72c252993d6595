/* Shared between the files of sessions/: nothing outside includes this. */
#ifndef BILORA_SESSIONS_SESSION_INTERNAL_H
#define BILORA_SESSIONS_SESSION_INTERNAL_H

#include "engine/train.h"

struct cJSON;

/* The spectrum of the adapters held in an exported state, as session.json
 * stores it: {"step", "rows": [{"name", "values", "orth"?,
 * "magnitude_change"?}]}, rows in parameter order ("L3.query"). NULL when
 * the state holds no adapter (or out of memory). */
struct cJSON *session_spectrum_from_state(const RunState *st, const TrainConfig *cfg, long step);

#endif
