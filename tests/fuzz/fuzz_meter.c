/* Fuzzes the SSE meter (src/gateway/meter.c): whatever the bytes and however they are split
 * into reads, the usage read and the event boundaries are the same as for the whole input at
 * once. The first two bytes choose the style and the split points. The split reader starts
 * with the small buffer a relay gives it, which grows for a larger event; the whole one has
 * the largest from the start. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "gateway/meter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char buf_a[GH_METER_EVENT_MAX], buf_b[GH_METER_EVENT_INLINE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    gh_meter_style_t style = data[0] & 1 ? GH_METER_OPENAI : GH_METER_ANTHROPIC;
    size_t step = (size_t)data[1] % 17 + 1;
    const char *s = (const char *)data + 2;
    size_t len = size - 2;

    gh_meter_t whole, split;
    gh_meter_init(&whole, style, buf_a, sizeof(buf_a));
    gh_meter_init(&split, style, buf_b, sizeof(buf_b));
    gh_meter_feed(&whole, s, len);
    for (size_t i = 0; i < len; i += step)
        gh_meter_feed(&split, s + i, len - i < step ? len - i : step);

    assert(memcmp(&whole.usage, &split.usage, sizeof(whole.usage)) == 0);
    assert(gh_meter_boundary(&whole) == gh_meter_boundary(&split));
    assert(whole.terminal == split.terminal);
    assert(gh_meter_boundary(&whole) <= len);
    assert(gh_meter_output_bound(&whole) >= 0);
    assert(whole.events_truncated == split.events_truncated);
    gh_meter_json(&whole, s, len); /* the same bytes as a whole JSON answer: no crash */
    gh_meter_dispose(&whole);
    gh_meter_dispose(&split);
    return 0;
}
