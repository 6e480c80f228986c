/* Status names and the error-report helper. */
#include "esmeta/core.h"

#include <stdarg.h>
#include <stdio.h>

const char *esm_status_name(esm_status s)
{
    switch (s) {
    case ESM_OK: return "ok";
    case ESM_EINVAL: return "invalid argument";
    case ESM_ENOTFOUND: return "not found";
    case ESM_EIO: return "I/O error";
    case ESM_EFORMAT: return "bad format";
    case ESM_EVERSION: return "unsupported version";
    case ESM_ECHECKSUM: return "checksum mismatch";
    case ESM_ENOMEM: return "out of memory";
    case ESM_ENONFINITE: return "non-finite value";
    case ESM_EMISMATCH: return "mismatch";
    case ESM_EDIST: return "distributed failure";
    case ESM_EUNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

__attribute__((format(printf, 4, 0))) static void record(esm_err *err, esm_status code, const char *field,
                                                         const char *fmt, va_list ap)
{
    err->code = code;
    err->field = field;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

esm_status esm_fail(esm_err *err, esm_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        record(err, code, NULL, fmt, ap);
        va_end(ap);
    }
    return code;
}

esm_status esm_fail_field(esm_err *err, esm_status code, const char *field, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        record(err, code, field, fmt, ap);
        va_end(ap);
    }
    return code;
}
