#include "lib/json_str.h"

#include <stdio.h>
#include <string.h>

size_t gh_json_escape(char *dst, size_t dst_size, const char *src)
{
    size_t o = 0;
    if (dst_size == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char tmp[8];
        size_t len;
        switch (*p) {
        case '"': memcpy(tmp, "\\\"", 2); len = 2; break;
        case '\\': memcpy(tmp, "\\\\", 2); len = 2; break;
        case '\n': memcpy(tmp, "\\n", 2); len = 2; break;
        case '\r': memcpy(tmp, "\\r", 2); len = 2; break;
        case '\t': memcpy(tmp, "\\t", 2); len = 2; break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
                len = 6;
            } else {
                tmp[0] = (char)*p;
                len = 1;
            }
        }
        if (o + len >= dst_size)
            break;
        memcpy(dst + o, tmp, len);
        o += len;
    }
    dst[o] = '\0';
    return o;
}
