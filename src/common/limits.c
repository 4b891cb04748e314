/* common/limits.c: the default limits (values and reasons live in trailwatch/limits.h). */
#include "trailwatch/limits.h"

void tw_limits_default(tw_limits *l)
{
    l->event_max = TW_DEFAULT_EVENT_MAX;
    l->json_depth = TW_DEFAULT_JSON_DEPTH;
    l->pattern_max = TW_DEFAULT_PATTERN_MAX;
    l->or_combinations = TW_DEFAULT_OR_COMBINATIONS;
    l->wildcard_stars = TW_DEFAULT_WILDCARD_STARS;
    l->rules_max = TW_DEFAULT_RULES_MAX;
    l->event_values = TW_DEFAULT_EVENT_VALUES;
    l->match_steps = TW_DEFAULT_MATCH_STEPS;
    l->line_max = TW_DEFAULT_LINE_MAX;
    l->file_max = TW_DEFAULT_FILE_MAX;
}
