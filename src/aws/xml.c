/* aws/xml.c: a capped, DOCTYPE-free walk over an XML document with expat. */
#include "aws/xml.h"

#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "common/buf.h"
#include "common/err.h"

typedef struct walk {
    XML_Parser p;
    tw_xml_fn fn;
    void *ctx;
    char path[TW_XML_PATH_MAX + 1];
    size_t plen;
    size_t marks[TW_XML_DEPTH_MAX + 1];  /* path length before each open element */
    unsigned depth;
    tw_buf text;
    int children;                        /* the open element had a child: not a leaf */
    int stopped;
    const char *why;                     /* our own reason to stop, NULL: expat's */
} walk;

static void halt(walk *w, const char *why)
{
    if (!w->why && !w->stopped)
        w->why = why;
    XML_StopParser(w->p, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    walk *w = ud;
    (void)attrs;
    if (w->why || w->stopped)
        return;
    if (w->depth == TW_XML_DEPTH_MAX) {
        halt(w, "nesting deeper than the limit");
        return;
    }
    const char *local = strrchr(name, ' '); /* "ns local" with namespace processing */
    local = local ? local + 1 : name;
    size_t n = strlen(local);
    if (w->plen + n + 1 > TW_XML_PATH_MAX) {
        halt(w, "element path longer than the limit");
        return;
    }
    w->marks[w->depth++] = w->plen;
    if (w->plen)
        w->path[w->plen++] = '/';
    memcpy(w->path + w->plen, local, n + 1);
    w->plen += n;
    tw_buf_reset(&w->text);
    w->children = 0;
}

static void on_end(void *ud, const XML_Char *name)
{
    walk *w = ud;
    (void)name;
    if (!w->depth || w->why || w->stopped)
        return;
    if (!w->children && w->fn(w->ctx, w->path, w->text.data ? w->text.data : "", w->text.len)) {
        w->stopped = 1;
        halt(w, NULL);
        return;
    }
    if (w->fn(w->ctx, w->path, NULL, 0)) {
        w->stopped = 1;
        halt(w, NULL);
        return;
    }
    w->plen = w->marks[--w->depth];
    w->path[w->plen] = '\0';
    w->children = 1; /* the parent now has a child */
    tw_buf_reset(&w->text);
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    walk *w = ud;
    if (w->why || w->stopped)
        return;
    if (tw__buf_append(&w->text, s, (size_t)len))
        halt(w, "element text longer than the limit");
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid, int internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)internal;
    halt(ud, "a DOCTYPE is not accepted");
}

static void on_entity(void *ud, const XML_Char *name, int pe, const XML_Char *value, int vlen, const XML_Char *base,
                      const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)pe, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid, (void)notation;
    halt(ud, "entity declarations are not accepted");
}

tw_status tw__xml_walk(const char *xml, size_t len, tw_xml_fn fn, void *ctx, tw_error *err)
{
    walk w;
    memset(&w, 0, sizeof w);
    w.fn = fn;
    w.ctx = ctx;
    tw__buf_init(&w.text, TW_XML_TEXT_MAX);
    if (len > (size_t)0x7fffffff)
        return tw__err(err, TW_ETOOBIG, "XML answer larger than 2 GiB");
    w.p = XML_ParserCreateNS(NULL, ' ');
    if (!w.p)
        return tw__err(err, TW_ENOMEM, "out of memory parsing XML");
    XML_SetUserData(w.p, &w);
    XML_SetElementHandler(w.p, on_start, on_end);
    XML_SetCharacterDataHandler(w.p, on_text);
    XML_SetStartDoctypeDeclHandler(w.p, on_doctype);
    XML_SetEntityDeclHandler(w.p, on_entity);
    tw_status rc = TW_OK;
    if (XML_Parse(w.p, xml ? xml : "", (int)len, XML_TRUE) == XML_STATUS_ERROR && !w.stopped) {
        rc = tw__err(err, TW_EEVENT, "XML answer, line %lu: %s", (unsigned long)XML_GetCurrentLineNumber(w.p),
                     w.why ? w.why : XML_ErrorString(XML_GetErrorCode(w.p)));
    } else if (w.why && !w.stopped) {
        rc = tw__err(err, TW_EEVENT, "XML answer: %s", w.why);
    }
    XML_ParserFree(w.p);
    tw__buf_free(&w.text);
    return rc;
}
