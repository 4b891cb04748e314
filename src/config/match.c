/* config/match.c: tw__config_match: the rules of a configuration an event matches. */
#include "config/match.h"

tw_status tw__config_match(const tw_config *cfg, tw_matcher *m, const char *event, size_t len,
                           tw_match_result *res, tw_error *err)
{
    (void)cfg;
    return tw_match(m, event, len, TW_EVENT_ENVELOPE, res, err);
}
