/*
 * web/assets.h: the dashboard's files, compiled into the binary (internal).
 *
 * Ownership: the table and its bytes are constant data of the program (build/gen/web_assets.c,
 * written by scripts/gen-web-assets.py from esbuild's bundle of web/).
 */
#ifndef TW_WEB_ASSETS_H
#define TW_WEB_ASSETS_H

#include <stddef.h>

typedef struct tw__web_asset {
    const char *path;              /* relative to the dashboard path: "" (the page), "assets/app-<hash>.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;       /* the same, gzip-compressed */
    size_t gz_len;
    const char *etag;              /* quoted */
    int immutable;                 /* its name holds its hash: cacheable forever */
} tw__web_asset;

extern const tw__web_asset tw__web_assets[];
extern const size_t tw__web_nassets;

#endif
