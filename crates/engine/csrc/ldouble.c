/*
 * Floating-point helpers for Tandem's engine crate.
 *
 * Redis does INCRBYFLOAT and HINCRBYFLOAT arithmetic in C `long double` (80-bit x87 extended
 * precision on x86-64) and parses every float with the C library's strtod/strtold. Rust has
 * neither a long double type nor a strtod with identical acceptance rules (hex floats,
 * "infinity", ERANGE reporting), so the few operations whose results users can observe live
 * here, written against the C library directly. Each function mirrors one Redis helper:
 * tandem_strtod ~ string2d, tandem_ld_valid ~ string2ld, tandem_ld_add ~ the body of
 * incrbyfloatCommand followed by ld2string(LD_STR_HUMAN).
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS: inputs of this length or more are rejected outright, and it is
 * also the size of the output buffer ld2string formats into. */
#define TANDEM_MAX_LD_CHARS (5 * 1024)

/* Small inputs are copied to the stack to add the NUL terminator strtod needs; longer ones go
 * to the heap because Redis's string2d has no length limit. */
#define TANDEM_STACK_DOUBLE_CHARS 256

/* Copies `len` bytes at `s` into `stack_buf` (or the heap when too long) with the NUL
 * terminator strtod needs. Returns the copy, or NULL when out of memory; free it with
 * release_copy. */
static char *nul_terminated(const char *s, size_t len, char *stack_buf) {
    char *buf = stack_buf;
    if (len >= TANDEM_STACK_DOUBLE_CHARS) {
        buf = malloc(len + 1);
        if (buf == NULL) return NULL;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

static void release_copy(char *buf, char *stack_buf) {
    if (buf != stack_buf) free(buf);
}

/* Parses `len` bytes at `s` as a double the way Redis's string2d does: the whole input must be
 * consumed, leading whitespace is refused, NaN is refused, and so are overflow to infinity and
 * underflow to zero (but not underflow to a subnormal). Returns 1 and stores the value on
 * success, 0 otherwise. */
int tandem_strtod(const char *s, size_t len, double *out) {
    char stack_buf[TANDEM_STACK_DOUBLE_CHARS];
    char *end;
    double v;
    int ok;

    if (len == 0) return 0;
    char *buf = nul_terminated(s, len, stack_buf);
    if (buf == NULL) return 0;

    errno = 0;
    v = strtod(buf, &end);
    ok = !(isspace((unsigned char)buf[0]) || (size_t)(end - buf) != len ||
           (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) ||
           isnan(v));
    release_copy(buf, stack_buf);
    if (ok) *out = v;
    return ok;
}

/* Parses `len` bytes at `s` the way Redis's zslParseRange reads a score bound: strtod over the
 * text up to its first NUL byte must stop exactly there (so leading whitespace, an empty string
 * and overflow to infinity are accepted) and the value must not be NaN. With `reject_erange`,
 * a result out of range (overflow or underflow) is refused too, as SORT refuses it. Returns 1
 * and stores the value on success, 0 otherwise. */
int tandem_strtod_bound(const char *s, size_t len, int reject_erange, double *out) {
    char stack_buf[TANDEM_STACK_DOUBLE_CHARS];
    char *end;
    double v;

    char *buf = nul_terminated(s, len, stack_buf);
    if (buf == NULL) return 0;
    errno = 0;
    v = strtod(buf, &end);
    int ok = end[0] == '\0' && !isnan(v) && !(reject_erange && errno == ERANGE);
    release_copy(buf, stack_buf);
    if (ok) *out = v;
    return ok;
}

/* Parses like Redis's string2ld: same rules as tandem_strtod but in long double precision, and
 * inputs of TANDEM_MAX_LD_CHARS bytes or more are refused. */
static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[TANDEM_MAX_LD_CHARS];
    char *end;
    long double v;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';

    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Returns 1 if the input would be accepted as a long double by Redis (string2ld), else 0. */
int tandem_ld_valid(const char *s, size_t len) {
    long double v;
    return parse_ld(s, len, &v);
}

/* Formats a finite long double the way Redis's ld2string(LD_STR_HUMAN) does: "%.17Lf", then
 * trailing zeros after the point are dropped, then a bare trailing point, and "-0" becomes
 * "0". Returns the length written (no NUL counted), or 0 if `cap` is too small. */
static size_t format_human(long double v, char *out, size_t cap) {
    int n = snprintf(out, cap, "%.17Lf", v);
    size_t l;

    if (n < 0 || (size_t)n + 1 > cap) return 0;
    l = (size_t)n;
    if (memchr(out, '.', l) != NULL) {
        char *p = out + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        l = 1;
    }
    return l;
}

/* Adds two decimal strings in long double precision and formats the sum for storage, exactly
 * as INCRBYFLOAT does. Returns 0 on success (sum in out[0..*outlen]), 1 if either input is not
 * a valid float, 2 if the sum is NaN or infinite, 3 if `outcap` is too small for the result. */
int tandem_ld_add(const char *a, size_t alen, const char *b, size_t blen, char *out,
                  size_t outcap, size_t *outlen) {
    long double x, y;
    size_t l;

    if (!parse_ld(a, alen, &x) || !parse_ld(b, blen, &y)) return 1;
    x += y;
    if (isnan(x) || isinf(x)) return 2;
    l = format_human(x, out, outcap);
    if (l == 0) return 3;
    *outlen = l;
    return 0;
}

/* A blocking command's timeout in seconds, as Redis 7.2's getTimeoutFromObjectOrReply reads it:
 * parsed like string2ld, multiplied by 1000 and rounded up to whole milliseconds. Returns 0 if
 * the input is not a long double, 2 if the milliseconds exceed LLONG_MAX ("timeout is out of
 * range"), else 1 with the milliseconds in *out. Values below LLONG_MIN (-inf) come out as
 * LLONG_MIN, as the x86-64 conversion Redis relies on gives, so they read as negative. */
int tandem_timeout_ms(const char *s, size_t len, long long *out) {
    long double v;

    if (!parse_ld(s, len, &v)) return 0;
    v *= 1000.0L;
    if (v > (long double)LLONG_MAX) return 2;
    v = ceill(v);
    if (v >= 9223372036854775808.0L) return 2;
    *out = v < -9223372036854775808.0L ? LLONG_MIN : (long long)v;
    return 1;
}
