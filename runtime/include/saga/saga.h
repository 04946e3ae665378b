/* saga.h - The public API of the saga runtime: include this one header. */
#ifndef SAGA_SAGA_H
#define SAGA_SAGA_H

#include "saga/app.h"
#include "saga/config.h"
#include "saga/ctx.h"
#include "saga/discovery.h"
#include "saga/event.h"
#include "saga/fs.h"
#include "saga/handover.h"
#include "saga/hash.h"
#include "saga/log.h"
#include "saga/service.h"
#include "saga/stats.h"
#include "saga/status.h"
#include "saga/wire.h"

#endif
