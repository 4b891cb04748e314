/*
 * trailwatch/trailwatch.h: the whole public API of the trailwatch library, one include.
 *
 * Ownership: see each header; every handle has a create/free pair and the caller owns what it creates.
 */
#ifndef TRAILWATCH_H
#define TRAILWATCH_H

#define TW_VERSION "0.1.0"

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
