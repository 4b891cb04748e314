/* config/rulefile.c: {"name": pattern, ...} from YAML or JSON into a rule set. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "config/config_int.h"
#include "trailwatch/json.h"
#include "trailwatch/packs.h"
#include "trailwatch/rulefile.h"
#include "trailwatch/yaml.h"

tw_status tw_read_file(const char *path, size_t max, char **out, size_t *len, tw_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
    tw_buf b = TW_BUF_INIT;
    tw__buf_init(&b, max);
    tw_status rc = TW_OK;
    for (;;) {
        if ((rc = tw__buf_reserve(&b, 65536))) {
            rc = rc == TW_ETOOBIG ? tw__err(err, rc, "%s: larger than the limit of %zu bytes", path, max)
                                  : tw__err(err, rc, "%s: out of memory", path);
            break;
        }
        ssize_t n = read(fd, b.data + b.len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    close(fd);
    if (rc) {
        tw__buf_free(&b);
        return rc;
    }
    *out = tw__buf_detach(&b, len);
    return *out ? TW_OK : tw__err(err, TW_ENOMEM, "%s: out of memory", path);
}

static void report_one(tw_report_fn report, void *ctx, size_t *nerrors, tw_error *first, const tw_error *e)
{
    if ((*nerrors)++ == 0 && first)
        *first = *e;
    if (report)
        report(ctx, e->msg);
}

/* Reads a rules file as JSON (exact number literals, byte positions) or YAML. */
static tw_status read_rules(const char *path, const tw_limits *lim, char **text, tw_json_doc **doc, tw_error *err)
{
    size_t len = 0;
    *doc = NULL;
    tw_status rc = tw_read_file(path, lim->file_max, text, &len, err);
    if (rc)
        return rc;
    size_t i = 0;
    while (i < len && ((*text)[i] == ' ' || (*text)[i] == '\n' || (*text)[i] == '\r' || (*text)[i] == '\t'))
        i++;
    tw_limits dl = *lim;
    dl.event_max = lim->file_max;
    rc = i < len && (*text)[i] == '{' ? tw_json_parse(*text, len, &dl, doc, err) : tw_yaml_parse(*text, len, &dl, doc, err);
    if (rc)
        tw__err_prefix(err, "%s", path);
    return rc;
}

static int is_pack(const tw_json *root)
{
    return tw_json_typeof(tw_json_get(root, "pack")) == TW_JSON_STRING &&
           tw_json_typeof(tw_json_get(root, "rules")) == TW_JSON_ARRAY;
}

/* Adds {"name": pattern, ...} to b; invalid rules are reported and counted. */
static tw_status add_patterns(const char *path, const tw_json *root, const tw_limits *lim, tw_ruleset_builder *b,
                              size_t *nerrors, tw_report_fn report, void *ctx, tw_error *err)
{
    size_t before = *nerrors;
    tw_error e;
    if (tw_json_typeof(root) != TW_JSON_OBJECT || tw_json_size(root) == 0)
        return tw__err(err, TW_ECONFIG, "%s: a rules file must map rule names to event patterns "
                                        "({\"name\": {\"source\": [\"aws.ec2\"]}, ...})", path);
    for (size_t k = 0; k < tw_json_size(root); k++) {
        const char *name = tw_json_key(root, k, NULL);
        const tw_json *pv = tw_json_at(root, k);
        tw_pattern *p = NULL;
        tw_status prc = tw_pattern_from_json(pv, lim, &p, &e);
        if (!prc)
            prc = tw_ruleset_builder_add(b, name, p, NULL, &e);
        if (prc == TW_ENOMEM)
            return tw__err(err, prc, "out of memory");
        if (prc) {
            tw__err_prefix(&e, "%s:%u: rule \"%s\"", path, tw_json_line(pv), name);
            report_one(report, ctx, nerrors, err, &e);
        }
    }
    return *nerrors > before ? (err ? err->code : TW_EPATTERN) : TW_OK;
}

tw_status tw_rulefile_add(const char *path, const tw_limits *lim, tw_ruleset_builder *b, size_t *nerrors,
                          tw_report_fn report, void *ctx, tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    char *text = NULL;
    tw_json_doc *doc = NULL;
    tw_status rc = read_rules(path, lim, &text, &doc, err);
    if (!rc && is_pack(tw_json_root(doc)))
        rc = tw__err(err, TW_ECONFIG, "%s: a rule pack is loaded on its own (give its rules file, or load it "
                                      "from trailwatch.yml's packs:)", path);
    else if (!rc)
        rc = add_patterns(path, tw_json_root(doc), lim, b, nerrors, report, ctx, err);
    tw_json_doc_free(doc);
    free(text);
    return rc;
}

tw_status tw_rulefile_load(const char *path, const tw_limits *lim, tw_ruleset **out, size_t *nerrors,
                           tw_report_fn report, void *ctx, tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    *nerrors = 0;
    char *text = NULL;
    tw_json_doc *doc = NULL;
    tw_ruleset_builder *b = NULL;
    tw_status rc = read_rules(path, lim, &text, &doc, err);
    if (rc)
        goto out;
    const tw_json *root = tw_json_root(doc);
    if (is_pack(root)) {
        /* a rule pack (rules/README.md): its rules, every one, params at their examples */
        tw_config *cfg = NULL;
        if (!(rc = tw_config_load_for_test(NULL, &path, 1, &cfg, nerrors, report, ctx, err))) {
            *out = tw__config_take_ruleset(cfg);
            tw_config_free(cfg);
        }
        goto out;
    }
    if ((rc = tw_ruleset_builder_new(lim, &b))) {
        tw__err(err, rc, "out of memory");
        goto out;
    }
    if (!(rc = add_patterns(path, root, lim, b, nerrors, report, ctx, err)))
        rc = tw_ruleset_build(b, out, err);
out:
    tw_ruleset_builder_free(b);
    tw_json_doc_free(doc);
    free(text);
    return rc;
}
