-- wrk script: POST a small non-streaming /v1/messages request. The key comes from the
-- environment (GATEHOUSE_BENCH_KEY); for the straight-to-upstream and nginx runs any value works.
-- GATEHOUSE_BENCH_MODEL picks the model (default bench-model).
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = os.getenv("GATEHOUSE_BENCH_KEY") or "bench"
wrk.body = '{"model":"' .. (os.getenv("GATEHOUSE_BENCH_MODEL") or "bench-model") ..
  '","max_tokens":16,"messages":[{"role":"user","content":"Say hello in five words."}]}'

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_us=%d p99_us=%d errors=%d non2xx=%d n=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.requests))
end
