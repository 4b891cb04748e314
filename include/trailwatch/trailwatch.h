/*
 * trailwatch/trailwatch.h: the whole public API of the trailwatch library, one include.
 *
 * Ownership: see each header; every handle has a create/free pair and the caller owns what it creates.
 */
#ifndef TRAILWATCH_H
#define TRAILWATCH_H

/* The library's version: numbers to compare in code (#if TW_VERSION_HEX >= 0x000200), the string
 * to show. The Makefile reads these lines for trailwatch.pc. */
#define TW_VERSION_MAJOR 0
#define TW_VERSION_MINOR 1
#define TW_VERSION_PATCH 0
#define TW_VERSION_HEX ((TW_VERSION_MAJOR << 16) | (TW_VERSION_MINOR << 8) | TW_VERSION_PATCH)
#define TW_VERSION_STR_(x) #x
#define TW_VERSION_STR(x) TW_VERSION_STR_(x)
#define TW_VERSION \
    TW_VERSION_STR(TW_VERSION_MAJOR) "." TW_VERSION_STR(TW_VERSION_MINOR) "." TW_VERSION_STR(TW_VERSION_PATCH)

#include "trailwatch/cluster.h"
#include "trailwatch/error.h"
#include "trailwatch/event.h"
#include "trailwatch/json.h"
#include "trailwatch/limits.h"
#include "trailwatch/packs.h"
#include "trailwatch/pattern.h"
#include "trailwatch/rulefile.h"
#include "trailwatch/server.h"
#include "trailwatch/sigma.h"
#include "trailwatch/verify.h"
#include "trailwatch/yaml.h"

#endif
