/* `gatehouse mock-upstream`: the mock model (mock.h) served over HTTP by its own libh2o
 * server, as a stand-in for a real model server in tests and benchmarks. */
#ifndef GH_GATEWAY_MOCK_SERVER_H
#define GH_GATEWAY_MOCK_SERVER_H

/* Runs the server the options describe until SIGINT or SIGTERM; `argv` holds the options only
 * (what follows "mock-upstream"): --port N (0 picks a free port), --host ADDR (127.0.0.1),
 * --latency-ms N, --tokens-per-second N (the defaults of every request), --threads N (one
 * event loop each; default one per core), -h/--help. It serves POST /v1/messages,
 * /v1/messages/count_tokens and /v1/chat/completions for any model name, and GET /healthz.
 * A request may override the defaults with the headers x-mock-latency-ms and
 * x-mock-tokens-per-second, and inject a failure with x-mock-fail (see gh_mock_fail_parse).
 * --fail MODE injects one into every request; PUT /mock/fail (body: a mode or "none")
 * changes it while running, and while it is 529 or 500 GET /healthz answers 503.
 * Once listening it writes "mock upstream listening on http://HOST:PORT" to stderr. Returns
 * the process exit status: 0 after a clean stop, 1 when it cannot start, 2 for bad options.
 * Call it from the main thread before any other thread exists: it sets the signal mask. */
int gh_mock_server_main(int argc, char **argv);

#endif
