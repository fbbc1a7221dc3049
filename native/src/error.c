#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A fixed per-thread buffer: no allocation, nothing to free at thread exit, and the text
 * stays valid until the next call on the same thread. Longer messages are truncated. */
#define ENGINE_ERROR_CAPACITY 2048
static _Thread_local char t_error[ENGINE_ERROR_CAPACITY];

void engine_error_clear(void) { t_error[0] = '\0'; }

engine_status engine_error_set(engine_status status, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(t_error, sizeof t_error, format, args);
    va_end(args);
    return status;
}

void engine_error_set_text(const char* text)
{
    if (text == NULL) { t_error[0] = '\0'; return; }
    size_t n = strlen(text);
    if (n >= sizeof t_error) n = sizeof t_error - 1;
    memcpy(t_error, text, n);
    t_error[n] = '\0';
}

const char* engine_last_error(void) { return t_error; }
