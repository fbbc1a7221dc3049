/* Thread-local last-error text shared by the hosting layer and the managed engine. */
#ifndef ENGINE_ERROR_H
#define ENGINE_ERROR_H

#include "engine.h"

/* Clears this thread's error text; every public call starts with it. */
void engine_error_clear(void);

/* Sets this thread's error text (printf format; truncated when longer than the buffer) and
 * returns status, so callers can write `return engine_error_set(...)`. */
engine_status engine_error_set(engine_status status, const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Sets this thread's error text verbatim (used by the managed side through a callback). */
void engine_error_set_text(const char* text);

#endif /* ENGINE_ERROR_H */
