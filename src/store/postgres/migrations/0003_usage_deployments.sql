-- Deployments and fallbacks (SQLite 0009): besides the model that served it (`model`, which
-- reports group by and whose prices were charged), a usage event names the model the client
-- asked for when a fallback served instead (NULL when it is `model`) and the deployment
-- (upstream base URL) that served it (NULL for the built-in mock).
ALTER TABLE usage_events ADD COLUMN requested_model text;
ALTER TABLE usage_events ADD COLUMN deployment text;
