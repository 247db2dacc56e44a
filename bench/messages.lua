-- wrk script: POST one small model request, Anthropic or OpenAI style, streaming or not.
-- From the environment: GATEHOUSE_BENCH_KEY (the API key; any value for nginx and the
-- upstream), GATEHOUSE_BENCH_MODEL (default bench-model), GATEHOUSE_BENCH_STYLE (anthropic,
-- the default, or openai) and GATEHOUSE_BENCH_STREAM (1: a streaming request).
local key = os.getenv("GATEHOUSE_BENCH_KEY") or "bench"
local model = os.getenv("GATEHOUSE_BENCH_MODEL") or "bench-model"
local stream = os.getenv("GATEHOUSE_BENCH_STREAM") == "1"
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
if os.getenv("GATEHOUSE_BENCH_STYLE") == "openai" then
  wrk.headers["authorization"] = "Bearer " .. key
  wrk.body = '{"model":"' .. model .. '","max_tokens":16' ..
    (stream and ',"stream":true,"stream_options":{"include_usage":true}' or '') ..
    ',"messages":[{"role":"user","content":"Say hello in five words."}]}'
else
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.headers["x-api-key"] = key
  wrk.body = '{"model":"' .. model .. '","max_tokens":16' .. (stream and ',"stream":true' or '') ..
    ',"messages":[{"role":"user","content":"Say hello in five words."}]}'
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f requests=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
